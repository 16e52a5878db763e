//! The fields a store's source and destination both have to reach its server (host and
//! login, bucket and credentials …), declared once with their docs.

/// Declares a store's source config (through [`source_config!`](crate::source_config))
/// and destination config (through [`sink_config!`](crate::sink_config)), each with the
/// server fields after its own, and the struct those fields make on their own, with
/// `From<&Source>` and `From<&Sink>`: what reaching the server needs, taken from either.
///
/// ```text
/// ferry_filestore::server_config! {
///     /// The login fields both sections have.
///     struct Login { /// The server's host name.
///                    pub host: String, … }
///     source { /// `[source] type = "…"` …
///              pub struct SourceConfig { noun: "file", path: "…", …, own fields } }
///     sink { /// `[destination] type = "…"` …
///            pub struct SinkConfig { noun: "file", header: "", …, own fields } }
/// }
/// ```
#[macro_export]
macro_rules! server_config {
    (@from $server:ident, $config:ident, $($field:ident)*) => {
        impl From<&$config> for $server {
            fn from(c: &$config) -> Self {
                $server {
                    $($field: c.$field.clone(),)*
                }
            }
        }
    };
    (
        $(#[$smeta:meta])*
        $vis:vis struct $server:ident {
            $($(#[$fmeta:meta])* pub $field:ident : $fty:ty,)*
        }
        source {
            $(#[$source_meta:meta])*
            pub struct $source:ident { $($source_body:tt)* }
        }
        sink {
            $(#[$sink_meta:meta])*
            pub struct $sink:ident { $($sink_body:tt)* }
        }
    ) => {
        $crate::source_config! {
            $(#[$source_meta])*
            pub struct $source {
                $($source_body)*
                $($(#[$fmeta])* pub $field: $fty,)*
            }
        }

        $crate::sink_config! {
            $(#[$sink_meta])*
            pub struct $sink {
                $($sink_body)*
                $($(#[$fmeta])* pub $field: $fty,)*
            }
        }

        $(#[$smeta])*
        $vis struct $server {
            $(pub $field: $fty,)*
        }

        $crate::server_config!(@from $server, $source, $($field)*);
        $crate::server_config!(@from $server, $sink, $($field)*);
    };
}
