//! `-Z USER`: the account a capture drops to once its ports are started and
//! its first files open, read from /etc/passwd and /etc/group (no NSS: a
//! user only LDAP knows is not found).

use crate::error::{Field, ZcapError};

/// A user, its primary group and the groups it is a member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Every group id: the primary one and the supplementary ones.
    pub groups: Vec<u32>,
}

impl Account {
    /// Looks `user` (a name or a numeric id) up; a usage error names it.
    pub fn lookup(user: &str) -> Result<Self, ZcapError> {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        Account::find(user, &passwd, &group).ok_or_else(|| {
            ZcapError::config(
                Field::User,
                format!("no user named {user:?} in /etc/passwd"),
            )
        })
    }

    /// [`Account::lookup`] over the files' text.
    fn find(user: &str, passwd: &str, group: &str) -> Option<Self> {
        let (name, uid, gid) = passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let (name, uid, gid) = (
                *f.first()?,
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            );
            (name == user || user.parse::<u32>() == Ok(uid)).then(|| (name.to_owned(), uid, gid))
        })?;
        let mut groups = vec![gid];
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            let (Some(id), Some(members)) = (f.get(2).and_then(|g| g.parse().ok()), f.get(3))
            else {
                continue;
            };
            if members.split(',').any(|m| m.trim() == name) && !groups.contains(&id) {
                groups.push(id);
            }
        }
        Some(Account {
            name,
            uid,
            gid,
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\ncap:x:1001:1001::/home/cap:/bin/sh\nbroken\n";
    const GROUP: &str = "root:x:0:\npcap:x:120:cap,other\nwheel:x:10:someone\ncap:x:1001:\nodd\n";

    #[test]
    fn users_are_found_by_name_or_id_with_their_groups() {
        let cap = Account::find("cap", PASSWD, GROUP).unwrap();
        assert_eq!((cap.uid, cap.gid), (1001, 1001));
        assert_eq!(cap.groups, vec![1001, 120], "primary, then memberships");
        let by_id = Account::find("65534", PASSWD, GROUP).unwrap();
        assert_eq!(by_id.name, "nobody");
        assert_eq!(by_id.groups, vec![65534]);
        assert_eq!(Account::find("ghost", PASSWD, GROUP), None);
        assert_eq!(Account::find("broken", PASSWD, GROUP), None);
    }
}
