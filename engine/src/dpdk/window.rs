//! The bookkeeping both burst types share: up to `N` owned items in a fixed
//! array, held between a start and an end index, taken from the front.

/// Up to `N` items, `slots[start..end]` held. Owns nothing by itself: the
/// burst types around it decide what a held item owns and how it is freed.
pub(crate) struct Window<T: Copy, const N: usize> {
    slots: [T; N],
    start: usize,
    end: usize,
}

impl<T: Copy, const N: usize> Window<T, N> {
    /// An empty window whose unused slots hold `empty`.
    pub(crate) fn new(empty: T) -> Self {
        Window {
            slots: [empty; N],
            start: 0,
            end: 0,
        }
    }

    /// Items held.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when nothing is held.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The whole array, to be filled from the front: must be empty first.
    #[inline(always)]
    pub(crate) fn fill_slots(&mut self) -> &mut [T; N] {
        debug_assert!(self.is_empty(), "filling a burst that still owns items");
        self.start = 0;
        self.end = 0;
        &mut self.slots
    }

    /// Declares that the first `n` slots now hold items.
    #[inline(always)]
    pub(crate) fn set_filled(&mut self, n: usize) {
        debug_assert!(n <= N);
        self.start = 0;
        self.end = n;
    }

    /// The held items.
    #[inline(always)]
    pub(crate) fn held(&self) -> &[T] {
        &self.slots[self.start..self.end]
    }

    /// The held items, mutably.
    #[inline(always)]
    pub(crate) fn held_mut(&mut self) -> &mut [T] {
        &mut self.slots[self.start..self.end]
    }

    /// Appends an item. Panics if the window is full.
    #[inline(always)]
    pub(crate) fn push(&mut self, item: T) {
        if self.is_empty() {
            self.start = 0;
            self.end = 0;
        }
        assert!(self.end < N, "pushing onto a full burst");
        self.slots[self.end] = item;
        self.end += 1;
    }

    /// Takes the first held item out.
    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if self.is_empty() {
            return None;
        }
        let item = self.slots[self.start];
        self.start += 1;
        Some(item)
    }

    /// Forgets the first `n` held items: they went elsewhere.
    #[inline(always)]
    pub(crate) fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n;
    }

    /// Forgets every held item and returns them, for the caller to free.
    #[inline(always)]
    pub(crate) fn take_all(&mut self) -> &[T] {
        let (start, end) = (self.start, self.end);
        self.start = 0;
        self.end = 0;
        &self.slots[start..end]
    }

    /// Keeps, in order, the held items from the `from`-th on that `keep`
    /// accepts; hands each other one to `reject`. Items before `from` stay.
    #[inline]
    pub(crate) fn retain_from(
        &mut self,
        from: usize,
        mut keep: impl FnMut(&T) -> bool,
        mut reject: impl FnMut(T),
    ) {
        let first = (self.start + from).min(self.end);
        let mut kept = first;
        for i in first..self.end {
            let item = self.slots[i];
            if keep(&item) {
                self.slots[kept] = item;
                kept += 1;
            } else {
                reject(item);
            }
        }
        self.end = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn items_come_out_in_order_and_retain_keeps_order() {
        let mut w = Window::<u32, 8>::new(0);
        (1..=6).for_each(|i| w.push(i));
        assert_eq!(w.pop_front(), Some(1));
        let mut rejected = Vec::new();
        w.retain_from(1, |&i| i % 2 == 0, |i| rejected.push(i));
        assert_eq!(w.held(), &[2, 4, 6]);
        assert_eq!(rejected, vec![3, 5]);
        w.consume_front(1);
        assert_eq!(w.take_all(), &[4, 6]);
        assert!(w.is_empty());
        // An emptied window fills again from the front.
        (0..8).for_each(|i| w.push(i));
        assert_eq!(w.len(), 8);
    }
}
