//! The item layout in the one table (DynamoDB-style pk/sk), in one place so
//! every family is documented together.
//!
//! | family               | pk                          | sk          |
//! |----------------------|-----------------------------|-------------|
//! | Authorized User      | `AU`                        | `<au id>`   |
//! | login name → AU      | `LOGIN#<username>`          | `LOGIN`     |
//! | facility → AU        | `FAC#<facility id>`         | `FAC`       |
//! | idempotency record   | `MSG#<au>#<h(MSH-4,MSH-10)>`| `MSG`       |
//! | accepted message     | `IN#<message id>`           | `HEAD`, `PART#0000`… |
//!
//! Keys built from what senders write are hashed so no sender can make a key
//! longer than DynamoDB allows or collide with another family.

use sha2::{Digest, Sha256};
use store::Key;

pub const AU_PK: &str = "AU";

pub fn au(id: &str) -> Key {
    Key::new(AU_PK, id)
}

pub fn login(username: &str) -> Key {
    Key::new(
        format!("LOGIN#{}", short_hash(username.as_bytes())),
        "LOGIN",
    )
}

pub fn facility(facility: &str) -> Key {
    Key::new(format!("FAC#{}", short_hash(facility.as_bytes())), "FAC")
}

pub fn message(au: &str, facility: &str, control_id: &str) -> Key {
    let mut h = Sha256::new();
    h.update(facility.as_bytes());
    h.update([0]);
    h.update(control_id.as_bytes());
    Key::new(format!("MSG#{au}#{}", hex(&h.finalize()[..16])), "MSG")
}

pub fn accepted_head(message_id: &str) -> Key {
    Key::new(format!("IN#{message_id}"), "HEAD")
}

pub fn accepted_part(message_id: &str, n: usize) -> Key {
    Key::new(format!("IN#{message_id}"), format!("PART#{n:04}"))
}

/// 128 bits of SHA-256, hex: plenty to make collisions a non-event.
pub fn short_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes)[..16])
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}
