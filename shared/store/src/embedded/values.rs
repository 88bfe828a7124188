//! Binary encoding of items and changes inside redb values.
//!
//! A small hand-written, length-prefixed format (leading format byte for
//! future migrations) instead of a serde format: the records are fixed-shape,
//! decoding must fail loudly on corruption rather than guess, and it keeps the
//! crate's dependency list short.
//!
//! Payloads of [`COMPRESS_FROM`] bytes or more are stored LZ4-compressed
//! (flag [`LZ4`]): they are JSON, which shrinks about 3x, and a store that
//! fits the OS page cache reads from memory instead of disk (a million
//! children's records were 40 GiB uncompressed). Items written before the
//! flag existed decode as they are.
//!
//! Items are written in format 2, without their key: the redb key already
//! holds it (a third of a block entry's bytes were its key, twice). Format 1
//! values, which carry the key, still decode. Changes stay format 1; their
//! images are item values, keyed by the change's key.

use super::keys::parts;
use crate::error::{Result, StoreError};
use crate::model::{Change, Item, Key};

const FORMAT: u8 = 1;
/// Item values without the key.
const KEYLESS: u8 = 2;
const HAS_GSI1: u8 = 1;
const HAS_GSI2: u8 = 2;
const HAS_EXPIRY: u8 = 4;
const LZ4: u8 = 8;
/// Smaller payloads are stored as they are: too little to gain.
pub const COMPRESS_FROM: usize = 128;
const HAS_OLD: u8 = 1;
const HAS_NEW: u8 = 2;

fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Items are capped at 400 KB, so lengths always fit in u32.
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(b);
}

fn push_key(out: &mut Vec<u8>, k: &Key) {
    push_bytes(out, k.pk.as_bytes());
    push_bytes(out, k.sk.as_bytes());
}

/// Encode an item for the `items` table (format 2: its key is the table key).
pub fn encode_item(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(item.data.len() + 40);
    out.push(KEYLESS);
    out.extend_from_slice(&item.version.to_le_bytes());
    let flag = |on: bool, bit: u8| if on { bit } else { 0 };
    let compressed = (item.data.len() >= COMPRESS_FROM)
        .then(|| lz4_flex::compress_prepend_size(&item.data))
        .filter(|c| c.len() < item.data.len());
    let flags = flag(item.gsi1.is_some(), HAS_GSI1)
        | flag(item.gsi2.is_some(), HAS_GSI2)
        | flag(item.expires_at.is_some(), HAS_EXPIRY)
        | flag(compressed.is_some(), LZ4);
    out.push(flags);
    for k in [&item.gsi1, &item.gsi2].into_iter().flatten() {
        push_key(&mut out, k);
    }
    if let Some(t) = item.expires_at {
        out.extend_from_slice(&t.to_le_bytes());
    }
    push_bytes(&mut out, compressed.as_deref().unwrap_or(&item.data));
    out
}

/// Encode a change from already-encoded images (the writer has them at hand,
/// so 400 KB items are not encoded twice). `at_ms` comes first so trimming by
/// age reads 9 bytes.
pub fn encode_change_parts(
    at_ms: i64,
    key: &Key,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Vec<u8> {
    let images = old.map_or(0, <[u8]>::len) + new.map_or(0, <[u8]>::len);
    let mut out = Vec::with_capacity(images + key.pk.len() + key.sk.len() + 32);
    out.push(FORMAT);
    out.extend_from_slice(&at_ms.to_le_bytes());
    push_key(&mut out, key);
    let flags = if old.is_some() { HAS_OLD } else { 0 } | if new.is_some() { HAS_NEW } else { 0 };
    out.push(flags);
    for image in [old, new].into_iter().flatten() {
        push_bytes(&mut out, image);
    }
    out
}

/// Encode a change.
#[cfg(test)]
pub fn encode_change(change: &Change) -> Vec<u8> {
    let old = change.old.as_ref().map(encode_item);
    let new = change.new.as_ref().map(encode_item);
    encode_change_parts(change.at_ms, &change.key, old.as_deref(), new.as_deref())
}

/// A cursor over encoded bytes that reports truncation as corruption.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, why: &str) -> StoreError {
        StoreError::Corrupt(format!("{}: {why}", self.what))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(self.corrupt("truncated"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.corrupt("key is not UTF-8"))
    }

    fn key(&mut self) -> Result<Key> {
        Ok(Key {
            pk: self.string()?,
            sk: self.string()?,
        })
    }

    fn format(&mut self) -> Result<()> {
        match self.u8()? {
            FORMAT => Ok(()),
            other => Err(self.corrupt(&format!("unknown format {other}"))),
        }
    }

    fn finish(&self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt("trailing bytes"))
        }
    }
}

/// Decode the value stored under `key`.
pub fn decode_item(bytes: &[u8], key: &Key) -> Result<Item> {
    decode_item_with(bytes, || Ok(key.clone()))
}

/// Decode the value stored under the encoded table key `table_key` (a scan
/// or an index walk, which has the key only as bytes).
pub fn decode_item_in(bytes: &[u8], table_key: &[u8]) -> Result<Item> {
    decode_item_with(bytes, || match parts(table_key).as_deref() {
        Some([pk, sk]) => Ok(Key::new(pk.clone(), sk.clone())),
        _ => Err(StoreError::Corrupt(
            "item: table key is not pk and sk".into(),
        )),
    })
}

fn decode_item_with(bytes: &[u8], key: impl FnOnce() -> Result<Key>) -> Result<Item> {
    let mut r = Reader {
        bytes,
        what: "item",
    };
    let keyless = match r.u8()? {
        KEYLESS => true,
        FORMAT => false,
        other => return Err(r.corrupt(&format!("unknown format {other}"))),
    };
    let version = u64::from_le_bytes(r.array()?);
    let flags = r.u8()?;
    let key = if keyless { key()? } else { r.key()? };
    let gsi1 = if flags & HAS_GSI1 != 0 {
        Some(r.key()?)
    } else {
        None
    };
    let gsi2 = if flags & HAS_GSI2 != 0 {
        Some(r.key()?)
    } else {
        None
    };
    let expires_at = if flags & HAS_EXPIRY != 0 {
        Some(i64::from_le_bytes(r.array()?))
    } else {
        None
    };
    let stored = r.bytes()?;
    let data = if flags & LZ4 != 0 {
        // The stated size is checked first: a damaged one must not become
        // a huge allocation.
        let size = stored
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(usize::MAX, |b| u32::from_le_bytes(b) as usize);
        if size > crate::limits::MAX_ITEM_BYTES {
            return Err(r.corrupt("compressed payload states an impossible size"));
        }
        lz4_flex::decompress_size_prepended(stored)
            .map_err(|e| r.corrupt(&format!("compressed payload: {e}")))?
    } else {
        stored.to_vec()
    };
    r.finish()?;
    Ok(Item {
        key,
        version,
        data,
        gsi1,
        gsi2,
        expires_at,
    })
}

/// The commit time of an encoded change, without decoding the images.
pub fn change_time(bytes: &[u8]) -> Result<i64> {
    let mut r = Reader {
        bytes,
        what: "change",
    };
    r.format()?;
    Ok(i64::from_le_bytes(r.array()?))
}

/// Decode a change written by [`encode_change`].
pub fn decode_change(seq: u64, bytes: &[u8]) -> Result<Change> {
    let mut r = Reader {
        bytes,
        what: "change",
    };
    r.format()?;
    let at_ms = i64::from_le_bytes(r.array()?);
    let key = r.key()?;
    let flags = r.u8()?;
    let old = if flags & HAS_OLD != 0 {
        Some(decode_item(r.bytes()?, &key)?)
    } else {
        None
    };
    let new = if flags & HAS_NEW != 0 {
        Some(decode_item(r.bytes()?, &key)?)
    } else {
        None
    };
    r.finish()?;
    Ok(Change {
        seq,
        at_ms,
        key,
        old,
        new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> Item {
        Item::new(Key::new("p\0", "s"), (0..=255u8).collect::<Vec<_>>())
            .with_gsi2(Key::new("g", "h"))
            .with_expiry(-5)
    }

    #[test]
    fn item_round_trip() {
        let mut i = item();
        i.version = 7;
        assert_eq!(decode_item(&encode_item(&i), &i.key), Ok(i.clone()));
        let tk = super::super::keys::table_key(&i.key);
        assert_eq!(decode_item_in(&encode_item(&i), &tk), Ok(i));
    }

    #[test]
    fn item_values_do_not_repeat_the_key() {
        let i = Item::new(
            Key::new("BLK#0123456789abcdef", "S#s0123456789abcdef"),
            Vec::new(),
        );
        // format, version, flags, payload length.
        assert_eq!(encode_item(&i).len(), 1 + 8 + 1 + 4);
        let bad = Item::new(Key::new("x", "y"), Vec::new());
        assert!(matches!(
            decode_item_in(&encode_item(&bad), b"no parts"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn change_round_trip() {
        let c = Change {
            seq: 9,
            at_ms: 123,
            key: item().key,
            old: None,
            new: Some(item()),
        };
        let bytes = encode_change(&c);
        assert_eq!(change_time(&bytes), Ok(123));
        assert_eq!(decode_change(9, &bytes), Ok(c));
    }

    fn json_item() -> Item {
        let data = br#"{"id":"0f3a","order":{"vaccine":[{"code":"08","system":"CVX"}],"lot_numbers":["LOT1"],"administered":"2020-01-15"},"sources":[]}"#.repeat(8);
        Item::new(Key::new("PAT#1", "IMM#1"), data)
    }

    #[test]
    fn json_payloads_are_stored_compressed_and_read_back_whole() {
        let i = json_item();
        let bytes = encode_item(&i);
        assert!(bytes.len() < i.data.len() / 2, "{} bytes", bytes.len());
        assert_eq!(decode_item(&bytes, &i.key), Ok(i));
        // Small payloads stay as they are.
        let small = Item::new(Key::new("a", "b"), b"{}".to_vec());
        assert_eq!(encode_item(&small)[9] & LZ4, 0);
        assert_eq!(decode_item(&encode_item(&small), &small.key), Ok(small));
    }

    #[test]
    fn items_written_before_compression_and_with_their_key_still_decode() {
        // Format 1 without the flag: what earlier versions wrote. The key
        // comes from the value, as it was written.
        let i = json_item();
        let mut old = vec![FORMAT];
        old.extend_from_slice(&1u64.to_le_bytes());
        old.push(0);
        push_key(&mut old, &i.key);
        push_bytes(&mut old, &i.data);
        let mut want = i;
        want.version = 1;
        assert_eq!(
            decode_item(&old, &Key::new("ignored", "x")),
            Ok(want.clone())
        );
        assert_eq!(decode_item_in(&old, b"not a key"), Ok(want));
    }

    #[test]
    fn a_damaged_compressed_payload_is_corruption_not_a_panic() {
        let bytes = encode_item(&json_item());
        let payload = bytes.len() - 20;
        for flip in [payload, payload + 5, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[flip] ^= 0x5a;
            // Either detected, or (a literal byte changed) decoded to
            // something else: never a panic.
            let _ = decode_item(&b, &Key::new("a", "b"));
        }
        // A stated size beyond any item.
        let mut b = bytes.clone();
        // format, version, flags, payload length: then the size.
        let size_at = 1 + 8 + 1 + 4;
        b[size_at..size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_item(&b, &Key::new("a", "b")),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn truncation_is_corruption() {
        let bytes = encode_item(&item());
        for n in 0..bytes.len() {
            assert!(matches!(
                decode_item(&bytes[..n], &Key::new("p", "s")),
                Err(StoreError::Corrupt(_))
            ));
        }
    }
}
