/// The separators a message declares in MSH-1 and MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: u8,
    pub component: u8,
    pub repetition: u8,
    /// Absent when MSH-2 declares no escape character.
    pub escape: Option<u8>,
    /// Absent when MSH-2 declares no sub-component separator.
    pub subcomponent: Option<u8>,
}

impl Default for Delimiters {
    /// The delimiters the CDC guide requires (`|^~\&`).
    fn default() -> Self {
        Delimiters {
            field: b'|',
            component: b'^',
            repetition: b'~',
            escape: Some(b'\\'),
            subcomponent: Some(b'&'),
        }
    }
}

impl Delimiters {
    /// MSH-2 as it should be written for these delimiters.
    pub fn encoding_characters(&self) -> String {
        let mut s = String::with_capacity(4);
        s.push(self.component as char);
        s.push(self.repetition as char);
        if let Some(e) = self.escape {
            s.push(e as char);
        }
        if let Some(t) = self.subcomponent {
            s.push(t as char);
        }
        s
    }

    /// Whether these are exactly the guide's `|^~\&`.
    pub fn is_standard(&self) -> bool {
        *self == Delimiters::default()
    }

    pub(crate) fn is_delimiter(&self, b: u8) -> bool {
        b == self.field
            || b == self.component
            || b == self.repetition
            || Some(b) == self.escape
            || Some(b) == self.subcomponent
    }
}
