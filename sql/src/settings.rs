//! Connection settings every server database connector shares: where the server listens
//! and who logs in (`host`, `port`, `database`, `user`, `password`, or all in one `url`),
//! read from a config without I/O. The password is a [`Secret`]: `Debug` never shows it,
//! and no error repeats a URL (it may hold one).
//!
//! serde cannot combine `flatten` with `deny_unknown_fields` (nor keep the positions of
//! errors through it), so the fields are not a struct of their own in a config: the
//! [`server_config!`](crate::server_config) macro writes them into each config struct.

pub use ferry_core::Secret;
use ferry_core::{Error, Result};
pub use ferry_ssh::{Tunnel, TunnelConfig};

/// A URL's query parameters, `(key, value)`, in order.
pub type Params = Vec<(String, String)>;

/// What differs between servers in reading their settings.
#[derive(Debug, Clone, Copy)]
pub struct Product {
    /// The product's name in messages (`MySQL`).
    pub name: &'static str,
    /// URL schemes it takes (`mysql`, `mariadb`); the first names locations.
    pub schemes: &'static [&'static str],
    /// The port it listens on by default.
    pub default_port: u16,
}

/// The host used when a config names none.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// Where a server listens, which database, and who logs in.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database (schema).
    pub database: String,
    /// User name.
    pub user: String,
    /// Password, if any.
    pub password: Option<Secret>,
}

/// The connection fields of a config as written, borrowed (see
/// [`server_config!`](crate::server_config)).
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// `host`.
    pub host: &'a Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// `database`.
    pub database: &'a Option<String>,
    /// `user`.
    pub user: &'a Option<String>,
    /// `password`.
    pub password: &'a Option<Secret>,
    /// `url`.
    pub url: &'a Option<Secret>,
    /// `tunnel`.
    pub tunnel: &'a Option<TunnelConfig>,
}

impl Fields<'_> {
    /// The tunnel `tunnel = { … }` asks for, to `host:port` (the server, as the tunnel
    /// host sees it), validated without connecting; `known_hosts` is relative to
    /// `base_dir`. Every connection of a connector shares it (one SSH session).
    pub fn tunnel(
        &self,
        base_dir: &std::path::Path,
        host: &str,
        port: u16,
    ) -> Result<Option<std::sync::Arc<Tunnel>>> {
        match self.tunnel {
            Some(t) => Ok(Some(std::sync::Arc::new(t.tunnel(base_dir, host, port)?))),
            None => Ok(None),
        }
    }
}

/// What a connector's `route` says: the tunnel its connections went through, if any.
pub fn routes(tunnel: Option<&std::sync::Arc<Tunnel>>) -> Vec<String> {
    tunnel.and_then(|t| t.status()).into_iter().collect()
}

/// `message` of a connection's error, with why the tunnel it went through died when it
/// did (`…; the SSH tunnel ssh://… was lost: the tunnel host sent nothing for 16 s…`):
/// the driver only sees its connection end.
pub fn with_tunnel_loss(tunnel: Option<&std::sync::Arc<Tunnel>>, message: String) -> String {
    match tunnel.and_then(|t| t.lost()) {
        Some(lost) => format!("{message}; {lost}"),
        None => message,
    }
}

/// Where a driver connects: the local end of `tunnel` (its SSH session opened when none
/// is up), or nowhere else (`None`: the server itself).
pub async fn route(
    tunnel: Option<&std::sync::Arc<Tunnel>>,
) -> Result<Option<std::net::SocketAddr>> {
    match tunnel {
        Some(t) => {
            let opened = t.open_async().await?;
            tracing::debug!("{}", t.describe(&opened));
            Ok(Some(opened.addr))
        }
        None => Ok(None),
    }
}

/// `host:port` as written in a URL (`[::1]:5432`).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Product {
    /// `scheme://host:port/database`: where data went, without credentials.
    pub fn location(&self, host: &str, port: u16, database: &str) -> String {
        format!("{}://{}/{database}", self.schemes[0], host_port(host, port))
    }

    /// Parses `scheme://user:password@host:port/database?…`: the endpoint, and the
    /// query's parameters for the connector to read. Errors never repeat the URL.
    pub fn parse_url(&self, url: &str) -> Result<(Endpoint, Params)> {
        let shape = format!(
            "write it as {}://user:password@host:port/database",
            self.schemes[0]
        );
        let u = url::Url::parse(url.trim())
            .map_err(|e| Error::config(format!("`url` is not a valid URL ({e}); {shape}")))?;
        if !self.schemes.contains(&u.scheme()) {
            return Err(Error::config(format!(
                "`url` has scheme `{}`; {shape}",
                u.scheme()
            )));
        }
        let decode = |s: &str, what: &str| -> Result<String> {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| Error::config(format!("the {what} in `url` is not valid")))
        };
        let host = u
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let database = decode(u.path().trim_start_matches('/'), "database")?;
        if database.contains('/') {
            return Err(Error::config(format!(
                "`url` has a path with more than a database name; {shape}"
            )));
        }
        let password = match u.password() {
            Some(p) => Some(Secret::new(decode(p, "password")?)),
            None => None,
        };
        let params = u
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let endpoint = Endpoint {
            host,
            port: u.port().unwrap_or(self.default_port),
            database,
            user: decode(u.username(), "user name")?,
            password,
        };
        Ok((endpoint, params))
    }

    /// The endpoint `f` gives: the one `url` says (then `host`, `port`, `database` and
    /// `user` may not be given too, and `password` only when the URL has none), with the
    /// URL's query parameters; else the fields, with defaults.
    pub fn endpoint(&self, f: &Fields<'_>) -> Result<(Endpoint, Option<Params>)> {
        let Some(url) = f.url else {
            let endpoint = Endpoint {
                host: f.host.clone().unwrap_or_else(|| DEFAULT_HOST.to_string()),
                port: f.port.unwrap_or(self.default_port),
                database: f.database.clone().unwrap_or_default(),
                user: f.user.clone().unwrap_or_default(),
                password: f.password.clone(),
            };
            return Ok((endpoint, None));
        };
        let clash: Vec<&str> = [
            ("host", f.host.is_some()),
            ("port", f.port.is_some()),
            ("database", f.database.is_some()),
            ("user", f.user.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(n, _)| n)
        .collect();
        if !clash.is_empty() {
            return Err(Error::config(format!(
                "give either `url` or `{}`, not both",
                clash.join("`, `")
            )));
        }
        let (mut endpoint, params) = self.parse_url(url.expose())?;
        if let Some(p) = f.password {
            if endpoint.password.is_some() {
                return Err(Error::config(
                    "the password is given twice, in `url` and in `password`; keep one",
                ));
            }
            endpoint.password = Some(p.clone());
        }
        Ok((endpoint, Some(params)))
    }

    /// Refuses an endpoint that lacks what connecting needs.
    pub fn check(&self, e: &Endpoint) -> Result<()> {
        let scheme = self.schemes[0];
        if e.host.trim().is_empty() {
            return Err(Error::config("`host` is empty"));
        }
        if e.port == 0 {
            return Err(Error::config(format!(
                "`port` is 0; {} listens on {} by default",
                self.name, self.default_port
            )));
        }
        if e.user.is_empty() {
            return Err(Error::config(format!(
                "no user: set `user` (or put it in `url`, {scheme}://USER@host/database)"
            )));
        }
        if e.database.trim().is_empty() {
            return Err(Error::config(format!(
                "no database: set `database` (or put it in `url`, {scheme}://host/DATABASE)"
            )));
        }
        Ok(())
    }
}

/// Lets a connector's settings struct, which holds its [`Endpoint`] in field `endpoint`,
/// read and set the endpoint's fields as its own (`s.host`, `s.port = 1`).
#[macro_export]
macro_rules! endpoint_fields {
    ($settings:ty) => {
        impl ::std::ops::Deref for $settings {
            type Target = $crate::settings::Endpoint;

            fn deref(&self) -> &$crate::settings::Endpoint {
                &self.endpoint
            }
        }

        impl ::std::ops::DerefMut for $settings {
            fn deref_mut(&mut self) -> &mut $crate::settings::Endpoint {
                &mut self.endpoint
            }
        }
    };
}

/// A server connector's config struct with the shared connection fields written in:
/// `host`, `port`, `database`, `user`, `password` and `url` (with the `tls { … }`
/// fields before `url`, the others after it), `serde(deny_unknown_fields)`, a doc
/// comment on every field, and `server_fields()` to read them.
///
/// ```
/// ferry_sql::server_config! {
///     /// Configuration of a `demo` destination.
///     pub struct DemoConfig {
///         port: 1234,
///         database: "The database to write into (required, here or in `url`).",
///         url: "All of the above in one URL, `demo://user:password@host:port/database` (default: none).",
///         tls {
///             /// Encrypt the connection (default false).
///             #[serde(default)]
///             pub tls: Option<bool>,
///         }
///         /// Schema the tables are written into (default `public`).
///         #[serde(default)]
///         pub schema: Option<String>,
///     }
/// }
/// ```
#[macro_export]
macro_rules! server_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            port: $port:literal,
            database: $database:expr,
            url: $url:expr,
            tls { $($(#[$tmeta:meta])* pub $tfield:ident : $tty:ty,)* }
            $($(#[$fmeta:meta])* pub $field:ident : $fty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, ::serde::Deserialize, ::schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Server host name or IP address (default `127.0.0.1`).
            #[serde(default)]
            pub host: Option<String>,
            #[doc = concat!("Server TCP port (default `", $port, "`).")]
            #[serde(default)]
            pub port: Option<u16>,
            #[doc = $database]
            #[serde(default)]
            pub database: Option<String>,
            /// User name (required, here or in `url`).
            #[serde(default)]
            pub user: Option<String>,
            /// Password (default: none). Write a reference such as `${secret:NAME}`.
            #[serde(default)]
            pub password: Option<$crate::settings::Secret>,
            $($(#[$tmeta])* pub $tfield: $tty,)*
            #[doc = $url]
            #[serde(default)]
            pub url: Option<$crate::settings::Secret>,
            /// Reach the server through an SSH tunnel (a bastion host; the fields are below),
            /// e.g. `{ host = "bastion.acme.example", user = "ferry", private_key = "${secret:bastion_key}", host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI…" }`;
            /// `host` and `port` are then the database's as the tunnel host sees them
            /// (default: none, connect directly).
            #[serde(default)]
            pub tunnel: Option<$crate::settings::TunnelConfig>,
            $($(#[$fmeta])* pub $field: $fty,)*
        }

        impl $name {
            /// This config with the connection fields set (and no `url`).
            pub fn with_server(
                self,
                host: &str,
                port: u16,
                database: &str,
                user: &str,
                password: Option<$crate::settings::Secret>,
            ) -> Self {
                $name {
                    host: Some(host.to_string()),
                    port: Some(port),
                    database: Some(database.to_string()),
                    user: Some(user.to_string()),
                    password,
                    url: None,
                    ..self
                }
            }

            /// The connection fields as written.
            pub fn server_fields(&self) -> $crate::settings::Fields<'_> {
                $crate::settings::Fields {
                    host: &self.host,
                    port: self.port,
                    database: &self.database,
                    user: &self.user,
                    password: &self.password,
                    url: &self.url,
                    tunnel: &self.tunnel,
                }
            }
        }
    };
}

/// For the config tests of every SQL connector: each config in `bad` is refused by `parse`
/// as invalid, and neither the error nor its debug form shows `secret`, which some of them
/// hold.
#[doc(hidden)]
pub fn assert_refused_quietly<T>(bad: &[&str], secret: &str, parse: impl Fn(&str) -> Result<T>) {
    for config in bad {
        let Err(e) = parse(config) else {
            panic!("{config}: accepted");
        };
        assert_eq!(
            e.kind(),
            ferry_core::ErrorKind::ConfigInvalid,
            "{config}: {e}"
        );
        assert!(!format!("{e} {e:?}").contains(secret), "{e:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::ConfigNode;

    const DEMO: Product = Product {
        name: "Demo",
        schemes: &["demo", "demodb"],
        default_port: 1234,
    };

    crate::server_config! {
        /// A test config.
        pub struct DemoConfig {
            port: 1234,
            database: "The database (required).",
            url: "All of the above in one URL (default: none).",
            tls {
                /// TLS (default false).
                #[serde(default)]
                pub tls: Option<bool>,
            }
            /// Tables (default: all).
            #[serde(default)]
            pub tables: Option<Vec<String>>,
        }
    }

    fn endpoint(toml: &str) -> Result<Endpoint> {
        let cfg: DemoConfig = ConfigNode::from_toml(toml, "/cfg")?.parse()?;
        let (e, _) = DEMO.endpoint(&cfg.server_fields())?;
        DEMO.check(&e)?;
        Ok(e)
    }

    /// Host, port, user and database.
    fn parts(e: &Endpoint) -> String {
        format!("{} {} {} {}", e.host, e.port, e.user, e.database)
    }

    #[test]
    fn fields_or_a_url() {
        let cfg: DemoConfig = ConfigNode::from_toml("tls = true\ntables = []\n", "/cfg")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!((cfg.tls, cfg.tables.clone()), (Some(true), Some(vec![])));
        // a config written back from settings keeps its own fields and drops a `url`
        let cfg = DemoConfig {
            url: Some(Secret::new("demo://old@h/db")),
            ..cfg
        }
        .with_server("db.example", 99, "crm", "ferry", None);
        let e = DEMO.endpoint(&cfg.server_fields()).unwrap().0;
        assert_eq!(parts(&e), "db.example 99 ferry crm");
        assert_eq!((cfg.url.is_none(), cfg.tls), (true, Some(true)));
        let e = endpoint("database = \"crm\"\nuser = \"root\"\ntls = true\ntables = []\n").unwrap();
        assert_eq!(parts(&e), "127.0.0.1 1234 root crm");
        let e = endpoint("url = \"demodb://u%40x:p%2Fw@[::1]:99/crm\"\n").unwrap();
        assert_eq!(parts(&e), "::1 99 u@x crm");
        assert_eq!(e.password.as_ref().unwrap().expose(), "p/w");
        assert_eq!(
            DEMO.location(&e.host, e.port, &e.database),
            "demo://[::1]:99/crm"
        );
        let e = endpoint("url = \"demo://u@h/crm\"\npassword = \"pw-1234\"\n").unwrap();
        assert_eq!(e.password.as_ref().unwrap().expose(), "pw-1234");
        let (_, params) = DEMO.parse_url("demo://u@h/crm?a=1&b=two").unwrap();
        assert_eq!(
            params,
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "two".to_string())
            ]
        );
    }

    #[test]
    fn refusals_never_echo_the_url() {
        let bad = [
            "host = \"h\"",
            "port = 0\ndatabase = \"d\"\nuser = \"u\"",
            "database = \"d\"",
            "url = \"demo://u:sekrit-canary@h/db\"\nhost = \"h\"",
            "url = \"other://u:sekrit-canary@h/db\"",
            "url = \"demo://u:sekrit-canary@h:99999/db\"",
            "url = \"demo://u:sekrit-canary@h/\"",
            "url = \"demo://u:sekrit-canary@h/db/x\"",
            "url = \"demo://u:sekrit-canary@h/db\"\npassword = \"again\"",
            "url = \"sekrit-canary\"",
            "database = \"d\"\nbogus = 1",
        ];
        assert_refused_quietly(&bad, "sekrit-canary", endpoint);
        let e = endpoint("database = \"d\"\nuser = \"u\"\nhots = \"h\"").unwrap_err();
        assert!(e.to_string().contains("did you mean `host`"), "{e}");
    }

    #[test]
    fn every_field_is_documented_and_debug_hides_the_password() {
        let schema = serde_json::to_value(schemars::schema_for!(DemoConfig)).unwrap();
        let props = schema["properties"].as_object().unwrap();
        let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["database", "host", "password", "port", "tables", "tls", "tunnel", "url", "user"]
        );
        for (name, p) in props {
            let doc = p["description"].as_str().unwrap_or_default();
            assert!(
                doc.contains("default") || doc.contains("required"),
                "{name}: {doc}"
            );
        }
        assert_eq!(
            props["port"]["description"],
            "Server TCP port (default `1234`)."
        );
        let cfg: DemoConfig =
            ConfigNode::from_toml("url = \"demo://u:sekrit-canary@h/db\"\n", "/cfg")
                .unwrap()
                .parse()
                .unwrap();
        assert!(!format!("{cfg:?}").contains("sekrit-canary"));
    }
}
