//! Enums stored and shown as text (`pending`, `attack`, ...): one macro gives each its
//! `as_str`, a strict `FromStr` (unknown text is an error naming the known values, never a
//! default) and `Display`.

/// Text that names no status of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {text:?} (known: {known})")]
pub struct UnknownStatus {
    pub kind: &'static str,
    pub text: String,
    pub known: String,
}

/// `text_enum!(Kind, "plugin kind", { Planner => "planner", ... })`.
#[macro_export]
macro_rules! text_enum {
    ($name:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownStatus;

            fn from_str(text: &str) -> Result<Self, $crate::UnknownStatus> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::UnknownStatus { kind: $kind, text: text.to_string(), known: [$($text),+].join(", ") }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
