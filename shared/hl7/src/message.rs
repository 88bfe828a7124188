use crate::{Delimiters, Element, Level, Location};
use std::fmt;

/// Why a byte string could not be read as an HL7 v2 message at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but whitespace (or nothing) was received.
    Empty,
    /// The first segment is not MSH.
    NoMsh,
    /// MSH-1/MSH-2 do not declare usable delimiters.
    BadDelimiters(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("the message is empty"),
            ParseError::NoMsh => f.write_str("the message does not start with an MSH segment"),
            ParseError::BadDelimiters(why) => {
                write!(f, "MSH-1/MSH-2 do not declare usable delimiters: {why}")
            }
        }
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, Copy)]
struct SegmentIndex {
    /// Index of the segment id in `Message::fields`; field n is at `first + n`.
    first: u32,
    /// Number of entries (segment id + fields).
    len: u32,
    /// Occurrence of this segment id in the message (1-based), as ERL counts it.
    seq: u32,
    /// Byte offset of the segment in the input.
    offset: u32,
}

/// A parsed message borrowing from its input.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    raw: &'a [u8],
    delims: Delimiters,
    segments: Vec<SegmentIndex>,
    fields: Vec<&'a [u8]>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl<'a> Message<'a> {
    /// Reads delimiters from MSH-1/MSH-2 and indexes every segment and field.
    ///
    /// Segments may end with CR, LF or CRLF; a BOM, MLLP framing bytes and blank
    /// lines around the message are tolerated.
    pub fn parse(input: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let body = trim_envelope(input);
        if body.is_empty() {
            return Err(ParseError::Empty);
        }
        if body.len() < 3 || &body[..3] != b"MSH" {
            return Err(ParseError::NoMsh);
        }
        let delims = read_delimiters(body)?;
        // Offsets are u32; anything larger is far beyond any message size limit.
        if body.len() > u32::MAX as usize / 2 {
            return Err(ParseError::BadDelimiters(
                "message too large to index".into(),
            ));
        }
        let base = body.as_ptr() as usize - input.as_ptr() as usize;
        let mut msg = Message {
            raw: body,
            delims,
            segments: Vec::with_capacity(body.len() / 80 + 1),
            // Fields average about ten bytes and rarely fewer than five
            // with their separator: room enough that the index is not
            // copied to a larger one part way.
            fields: Vec::with_capacity(body.len() / 4 + 8),
        };
        let mut counts: Vec<([u8; 3], u32)> = Vec::with_capacity(16);
        let mut start = 0usize;
        while start < body.len() {
            let end =
                memchr::memchr2(b'\r', b'\n', &body[start..]).map_or(body.len(), |i| start + i);
            let line = &body[start..end];
            if !line.iter().all(|b| b.is_ascii_whitespace()) {
                msg.push_segment(line, start + base, &mut counts);
            }
            start = end + 1;
        }
        Ok(msg)
    }

    fn push_segment(&mut self, line: &'a [u8], offset: usize, counts: &mut Vec<([u8; 3], u32)>) {
        let first = self.fields.len();
        let is_msh = line.len() >= 3 && &line[..3] == b"MSH";
        if is_msh && line.len() > 3 {
            // MSH-1 is the field separator itself; MSH-2 must not be split further.
            self.fields.push(&line[..3]);
            self.fields.push(&line[3..4]);
            self.push_fields(&line[4..]);
        } else {
            self.push_fields(line);
        }
        let id = self.fields[first];
        let key = segment_key(id);
        let seq = match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                counts.push((key, 1));
                1
            }
        };
        self.segments.push(SegmentIndex {
            first: first as u32,
            len: (self.fields.len() - first) as u32,
            seq,
            offset: offset as u32,
        });
    }

    /// Indexes the fields of `line`, split at the field separator.
    fn push_fields(&mut self, line: &'a [u8]) {
        let mut start = 0;
        crate::bytes::each_position(self.delims.field, line, |i| {
            self.fields.push(line.get(start..i).unwrap_or_default());
            start = i + 1;
        });
        self.fields.push(line.get(start..).unwrap_or_default());
    }

    pub fn delimiters(&self) -> Delimiters {
        self.delims
    }

    /// The message bytes without envelope (BOM, framing, surrounding blank lines).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn segment(&self, index: usize) -> Option<Segment<'_, 'a>> {
        (index < self.segments.len()).then_some(Segment { msg: self, index })
    }

    pub fn segments(&self) -> impl Iterator<Item = Segment<'_, 'a>> + '_ {
        (0..self.segments.len()).map(move |index| Segment { msg: self, index })
    }

    /// The MSH segment (always the first; `parse` guarantees it).
    pub fn msh(&self) -> Segment<'_, 'a> {
        Segment {
            msg: self,
            index: 0,
        }
    }

    /// The first segment with this id.
    pub fn first(&self, id: &str) -> Option<Segment<'_, 'a>> {
        self.segments().find(|s| s.id_bytes() == id.as_bytes())
    }

    /// Re-encodes the message with CR segment terminators (fields as received).
    pub fn to_er7(&self) -> String {
        let mut out = Vec::with_capacity(self.raw.len() + 2);
        for seg in self.segments() {
            seg.write_er7(&mut out);
            out.push(b'\r');
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn segment_key(id: &[u8]) -> [u8; 3] {
    let mut k = [b' '; 3];
    for (i, b) in id.iter().take(3).enumerate() {
        k[i] = *b;
    }
    k
}

fn trim_envelope(input: &[u8]) -> &[u8] {
    let mut s = input;
    if s.starts_with(BOM) {
        s = &s[BOM.len()..];
    }
    let start = s
        .iter()
        .position(|b| !(b.is_ascii_whitespace() || *b == 0x0B))
        .unwrap_or(s.len());
    s = &s[start..];
    let mut end = s
        .iter()
        .rposition(|b| !(b.is_ascii_whitespace() || *b == 0x1C))
        .map_or(0, |i| i + 1);
    // Spaces or tabs ending the last segment are field content, as on every
    // other segment; only line breaks, blank lines and framing are envelope.
    while end < s.len() && s[end].is_ascii_whitespace() && s[end] != b'\r' && s[end] != b'\n' {
        end += 1;
    }
    &s[..end]
}

fn read_delimiters(body: &[u8]) -> Result<Delimiters, ParseError> {
    let Some(&field) = body.get(3) else {
        return Err(ParseError::BadDelimiters(
            "MSH has no field separator".into(),
        ));
    };
    if field.is_ascii_alphanumeric()
        || field == b'\r'
        || field == b'\n'
        || field.is_ascii_whitespace()
    {
        return Err(ParseError::BadDelimiters(format!(
            "MSH-1 '{}' cannot be a field separator",
            printable(field)
        )));
    }
    let rest = &body[4..];
    let end = rest
        .iter()
        .position(|&b| b == field || b == b'\r' || b == b'\n')
        .unwrap_or(rest.len());
    let enc = &rest[..end];
    if enc.len() < 2 || enc.len() > 5 {
        return Err(ParseError::BadDelimiters(format!(
            "MSH-2 must hold 2 to 5 encoding characters, found {}",
            enc.len()
        )));
    }
    let d = Delimiters {
        field,
        component: enc[0],
        repetition: enc[1],
        escape: enc.get(2).copied(),
        subcomponent: enc.get(3).copied(),
    };
    let mut seen = vec![d.field, d.component, d.repetition];
    seen.extend(d.escape);
    seen.extend(d.subcomponent);
    // A fifth character (v2.7's truncation character) is not used here, but it
    // is part of MSH-2 and must be a valid delimiter too.
    seen.extend(enc.get(4).copied());
    for (i, b) in seen.iter().enumerate() {
        // Delimiters are single ASCII characters; a non-ASCII byte would be
        // split up by the UTF-8 text that `to_er7`, `escape` and `text` work in.
        if !b.is_ascii() || b.is_ascii_alphanumeric() || b.is_ascii_whitespace() {
            return Err(ParseError::BadDelimiters(format!(
                "'{}' cannot be a delimiter",
                printable(*b)
            )));
        }
        if seen[..i].contains(b) {
            return Err(ParseError::BadDelimiters(format!(
                "'{}' is declared twice",
                printable(*b)
            )));
        }
    }
    Ok(d)
}

fn printable(b: u8) -> String {
    if b.is_ascii_graphic() {
        (b as char).to_string()
    } else {
        format!("\\x{b:02X}")
    }
}

/// The fields of a segment (see [`Segment::fields`]).
#[derive(Debug, Clone)]
pub struct Fields<'m, 'a> {
    rest: std::slice::Iter<'m, &'a [u8]>,
    delims: Delimiters,
    /// How many of the next fields hold delimiters (MSH-1 and MSH-2).
    atomic: u8,
}

impl<'a> Iterator for Fields<'_, 'a> {
    type Item = Element<'a>;

    fn next(&mut self) -> Option<Element<'a>> {
        let Some(&raw) = self.rest.next() else {
            return Some(Element::new(&[], self.delims, Level::Field));
        };
        if self.atomic > 0 {
            self.atomic -= 1;
            return Some(Element::atomic(raw, self.delims));
        }
        Some(Element::new(raw, self.delims, Level::Field))
    }
}

/// One segment of a [`Message`].
#[derive(Debug, Clone, Copy)]
pub struct Segment<'m, 'a> {
    msg: &'m Message<'a>,
    index: usize,
}

impl<'m, 'a> Segment<'m, 'a> {
    fn idx(&self) -> SegmentIndex {
        self.msg.segments[self.index]
    }

    /// Position of the segment in the message (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn id_bytes(&self) -> &'a [u8] {
        self.msg.fields[self.idx().first as usize]
    }

    /// The segment id; a malformed id is shown with replacement characters.
    pub fn id(&self) -> std::borrow::Cow<'a, str> {
        crate::bytes::lossy(self.id_bytes())
    }

    /// Whether the id is three upper-case letters or digits, as HL7 requires.
    pub fn has_valid_id(&self) -> bool {
        let id = self.id_bytes();
        id.len() == 3
            && id
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    }

    /// Occurrence of this segment id in the message (1-based).
    pub fn seq(&self) -> u32 {
        self.idx().seq
    }

    pub fn byte_offset(&self) -> usize {
        self.idx().offset as usize
    }

    /// Number of the last field present (trailing empty fields included).
    pub fn field_count(&self) -> usize {
        self.idx().len as usize - 1
    }

    /// Fields 1, 2, 3... in order, as [`Segment::field`] gives them, then
    /// empty fields for ever: a reader going through every field of the
    /// segment finds the segment's place in the index once, not per field.
    pub fn fields(&self) -> Fields<'m, 'a> {
        let i = self.idx();
        let first = i.first as usize + 1;
        let end = (i.first + i.len) as usize;
        Fields {
            rest: self.msg.fields.get(first..end).unwrap_or_default().iter(),
            delims: self.msg.delims,
            atomic: if self.is_msh() { 2 } else { 0 },
        }
    }

    /// Field `n` (1-based); empty when absent. MSH-1 and MSH-2 are atomic.
    pub fn field(&self, n: usize) -> Element<'a> {
        let i = self.idx();
        let d = self.msg.delims;
        if n == 0 || n >= i.len as usize {
            return Element::new(&[], d, Level::Field);
        }
        let raw = self.msg.fields[i.first as usize + n];
        // The field number first: telling MSH apart costs a look at the id.
        if n <= 2 && self.is_msh() {
            Element::atomic(raw, d)
        } else {
            Element::new(raw, d, Level::Field)
        }
    }

    /// Decoded text of field `n`, first repetition, component and sub-component.
    pub fn value(&self, n: usize) -> std::borrow::Cow<'a, str> {
        self.field(n).first_leaf().text()
    }

    pub fn is_msh(&self) -> bool {
        self.id_bytes() == b"MSH"
    }

    pub fn location(&self) -> Location {
        Location::segment(&self.id(), self.seq())
    }

    pub fn field_location(&self, n: usize) -> Location {
        Location::field(&self.id(), self.seq(), n as u32)
    }

    fn write_er7(&self, out: &mut Vec<u8>) {
        let i = self.idx();
        let fields = &self.msg.fields[i.first as usize..(i.first + i.len) as usize];
        out.extend_from_slice(fields[0]);
        if self.is_msh() && fields.len() >= 2 {
            out.extend_from_slice(fields[1]);
            for (k, f) in fields[2..].iter().enumerate() {
                if k > 0 {
                    out.push(self.msg.delims.field);
                }
                out.extend_from_slice(f);
            }
        } else {
            for f in &fields[1..] {
                out.push(self.msg.delims.field);
                out.extend_from_slice(f);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const VXU: &[u8] = b"MSH|^~\\&|APP|FAC|IIS|IISFAC|20150624073733-0500||VXU^V04^VXU_V04|CTRL1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS\r\
PID|1||123^^^MPI^MR~456^^^SSA^SS||Doe^Jane^Q^^^^L||20150415|F\r\
ORC|RE||9^AA\r\
RXA|0|1|20150624||08^HepB^CVX|0.5|mL^mL^UCUM\r\
ORC|RE||10^AA\r\
RXA|0|1|20150624||20^DTaP^CVX&sub1&sub2|999\r";

    #[test]
    fn reads_fields_components_repetitions() {
        let m = Message::parse(VXU).unwrap();
        assert_eq!(m.len(), 6);
        let msh = m.msh();
        assert_eq!(msh.field(1).raw(), b"|");
        assert_eq!(msh.field(2).raw(), b"^~\\&");
        assert_eq!(msh.value(9), "VXU");
        assert_eq!(msh.field(9).at(1, 2, 0).text(), "V04");
        assert_eq!(msh.field(10).raw(), b"CTRL1");
        let pid = m.first("PID").unwrap();
        assert_eq!(pid.field(3).child_count(), 2);
        assert_eq!(pid.field(3).at(2, 4, 0).text(), "SSA");
        assert_eq!(pid.field(5).at(1, 2, 0).text(), "Jane");
        assert_eq!(pid.field(99).raw(), b"");
        let rxa2 = m.segments().filter(|s| s.id() == "RXA").nth(1).unwrap();
        assert_eq!(rxa2.seq(), 2);
        assert_eq!(rxa2.field(5).at(1, 3, 2).text(), "sub1");
        assert_eq!(
            rxa2.field_location(5)
                .with_component(3)
                .with_sub(2)
                .to_erl(),
            "RXA^2^5^1^3^2"
        );
    }

    #[test]
    fn fields_in_order_are_field_by_number() {
        let short = b"MSH|^~\\&\rPID|1\rORC\rRXA||||x|";
        for input in [VXU, &short[..]] {
            let m = Message::parse(input).unwrap();
            for seg in m.segments() {
                let mut fields = seg.fields();
                for n in 1..seg.field_count() + 4 {
                    let (a, b) = (fields.next().unwrap(), seg.field(n));
                    assert_eq!(
                        (a.raw(), a.level()),
                        (b.raw(), b.level()),
                        "{} {n}",
                        seg.id()
                    );
                }
            }
        }
    }

    #[test]
    fn accepts_cr_lf_crlf_bom_and_blank_lines() {
        let text = String::from_utf8(VXU.to_vec()).unwrap();
        for term in ["\n", "\r\n"] {
            let mut s = String::from("\u{feff}\r\n");
            s.push_str(&text.replace('\r', term));
            s.push_str("\r\n\r\n");
            let m = Message::parse(s.as_bytes()).unwrap();
            assert_eq!(m.len(), 6, "terminator {term:?}");
            assert_eq!(m.to_er7().as_bytes(), VXU);
        }
    }

    #[test]
    fn keeps_trailing_spaces_of_the_last_segment() {
        let m = Message::parse(b"MSH|^~\\&\rNTE|1||a \r\n \r\x1C\r").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.first("NTE").unwrap().field(3).raw(), b"a ");
        assert_eq!(m.to_er7(), "MSH|^~\\&\rNTE|1||a \r");
    }

    #[test]
    fn reads_other_delimiters() {
        let m = Message::parse(b"MSH#%!$*#APP#FAC\rPID#1##a%b!c%d").unwrap();
        let d = m.delimiters();
        assert_eq!((d.field, d.component, d.repetition), (b'#', b'%', b'!'));
        assert_eq!(m.msh().value(3), "APP");
        assert_eq!(m.first("PID").unwrap().field(3).at(2, 2, 0).text(), "d");
    }

    #[test]
    fn rejects_what_is_not_a_message() {
        assert_eq!(Message::parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(Message::parse(b" \r\n ").unwrap_err(), ParseError::Empty);
        assert_eq!(Message::parse(b"PID|1").unwrap_err(), ParseError::NoMsh);
        assert!(matches!(
            Message::parse(b"MSH").unwrap_err(),
            ParseError::BadDelimiters(_)
        ));
        assert!(matches!(
            Message::parse(b"MSH|^").unwrap_err(),
            ParseError::BadDelimiters(_)
        ));
        assert!(matches!(
            Message::parse(b"MSH|^^\\&|").unwrap_err(),
            ParseError::BadDelimiters(_)
        ));
        assert!(matches!(
            Message::parse(b"MSHA^~\\&").unwrap_err(),
            ParseError::BadDelimiters(_)
        ));
        assert!(matches!(
            Message::parse(b"MSH|\x80~\\&|").unwrap_err(),
            ParseError::BadDelimiters(_)
        ));
        assert!(matches!(
            Message::parse(b"MSH\xC3^~\\&\xC3").unwrap_err(),
            ParseError::BadDelimiters(_)
        ));
        assert!(matches!(
            Message::parse(b"MSH|^~\\&\x80|").unwrap_err(),
            ParseError::BadDelimiters(_)
        ));
        assert!(Message::parse(b"MSH|^~\\&#|").is_ok());
    }

    #[test]
    fn null_and_empty_are_different() {
        let m = Message::parse(b"MSH|^~\\&\rPID|1||\"\"||").unwrap();
        let pid = m.first("PID").unwrap();
        assert!(pid.field(3).is_null());
        assert!(!pid.field(3).is_empty());
        assert!(pid.field(4).is_empty());
        assert!(!pid.field(4).is_null());
    }
}
