//! ER7 (pipe-and-hat) codec for HL7 v2 messages.
//!
//! Parsing borrows from the input: a [`Message`] indexes segment and field
//! boundaries once, and repetitions, components and sub-components are split
//! lazily when asked for. Nothing here panics on any input; malformed bytes
//! surface as a [`ParseError`] (no usable MSH) or as values the validator in
//! the `iz` crate can judge and locate.

mod bytes;
mod delimiters;
mod element;
mod escape;
mod location;
mod message;
mod writer;

pub use delimiters::Delimiters;
pub use element::{Element, Level};
pub use escape::{decode, escape, escape_preserving};
pub use location::Location;
pub use message::{Fields, Message, ParseError, Segment};
pub use writer::{MessageWriter, SegmentWriter};
