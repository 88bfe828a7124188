//! Which store changes the matcher acts on: the creation of an accepted
//! message's head item (written last in intake's transaction, so the whole
//! message is readable when it appears).

use store::{Change, Key};

/// The accepted message a change announces, if it announces one.
pub fn accepted_message(change: &Change) -> Option<&str> {
    if change.old.is_some() || change.new.is_none() {
        return None;
    }
    accepted_message_key(&change.key)
}

/// The same test on a key alone (a DynamoDB stream INSERT record's keys).
pub fn accepted_message_key(key: &Key) -> Option<&str> {
    if key.sk != "HEAD" {
        return None;
    }
    key.pk.strip_prefix("IN#").filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::Item;

    #[test]
    fn only_new_heads_count() {
        let key = Key::new("IN#abc", "HEAD");
        let new = Change {
            seq: 1,
            at_ms: 0,
            key: key.clone(),
            old: None,
            new: Some(Item::new(key.clone(), Vec::new())),
        };
        assert_eq!(accepted_message(&new), Some("abc"));
        let update = Change {
            old: Some(Item::new(key.clone(), Vec::new())),
            ..new.clone()
        };
        assert_eq!(accepted_message(&update), None);
        let part = Key::new("IN#abc", "PART#0000");
        assert_eq!(accepted_message_key(&part), None);
        assert_eq!(accepted_message_key(&Key::new("MSG#x", "HEAD")), None);
    }
}
