//! A farm's server configuration and its users' credentials, made by `mintframe farm init`:
//! one nkey per user, a worker allowed only its own subjects, TLS with the farm's own CA.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::{
    FarmError, JOBS_STREAM, MODELS_BUCKET, WORKERS_CONSUMER, beat_subject, inbox_prefix, io_err,
    results_bucket,
};

/// What a user needs to join: its name, its nkey seed, where the farm is, the CA to trust.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub name: String,
    pub seed: String,
    pub url: String,
    pub ca: Option<PathBuf>,
    #[serde(skip)]
    pub path: PathBuf,
}

impl std::fmt::Debug for Credentials {
    // The seed is the secret: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn read(path: &Path) -> Result<Credentials, FarmError> {
        let bad = |reason: String| FarmError::Credentials {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| io_err("cannot read", path, e))?;
        let mut c: Credentials =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a farm credential: {e}")))?;
        nkeys::KeyPair::from_seed(&c.seed)
            .map_err(|e| bad(format!("its seed is not an nkey seed: {e}")))?;
        if c.name.is_empty()
            || !c
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return Err(bad(format!(
                "user name {:?}: letters, digits, - and _ only",
                c.name
            )));
        }
        // A relative CA sits beside the credential (how `init` writes it), so the two files can
        // be copied to a worker's machine together.
        if let Some(ca) = &c.ca
            && ca.is_relative()
        {
            c.ca = Some(path.parent().unwrap_or(Path::new(".")).join(ca));
        }
        c.path = path.to_path_buf();
        Ok(c)
    }

    fn write(&self, path: &Path) -> Result<(), FarmError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| io_err("cannot write", path, std::io::Error::other(e)))?;
        write_private(path, text.as_bytes())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), FarmError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("part");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(&tmp)
        .map_err(|e| io_err("cannot write", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err("cannot write", path, e))
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct FarmInit {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub url: String,
    pub coordinator: PathBuf,
    pub workers: Vec<PathBuf>,
}

/// The subjects a worker may publish to: its own results, beats and inbox replies, the one
/// consumer's next-message and ack subjects, its own results bucket, and reads of the models
/// bucket. Nothing of another worker's.
fn worker_permissions(w: &str) -> (Vec<String>, Vec<String>) {
    let bucket = results_bucket(w);
    let publish = vec![
        "$JS.API.INFO".to_owned(),
        format!("$JS.API.STREAM.INFO.{JOBS_STREAM}"),
        format!("$JS.API.CONSUMER.INFO.{JOBS_STREAM}.{WORKERS_CONSUMER}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{JOBS_STREAM}.{WORKERS_CONSUMER}"),
        format!("$JS.ACK.{JOBS_STREAM}.{WORKERS_CONSUMER}.>"),
        format!("mintframe.farm.result.{w}.*"),
        beat_subject(w),
        format!("$JS.API.STREAM.INFO.OBJ_{bucket}"),
        format!("$JS.API.STREAM.MSG.GET.OBJ_{bucket}"),
        format!("$JS.API.DIRECT.GET.OBJ_{bucket}.>"),
        format!("$O.{bucket}.C.>"),
        format!("$O.{bucket}.M.>"),
        // A result put again under its name (a task delivered twice) purges the old chunks.
        format!("$JS.API.STREAM.PURGE.OBJ_{bucket}"),
        format!("$JS.API.STREAM.INFO.OBJ_{MODELS_BUCKET}"),
        format!("$JS.API.STREAM.MSG.GET.OBJ_{MODELS_BUCKET}"),
        format!("$JS.API.DIRECT.GET.OBJ_{MODELS_BUCKET}.>"),
        format!("$JS.API.CONSUMER.CREATE.OBJ_{MODELS_BUCKET}"),
        format!("$JS.API.CONSUMER.CREATE.OBJ_{MODELS_BUCKET}.>"),
        format!("$JS.API.CONSUMER.DELETE.OBJ_{MODELS_BUCKET}.>"),
        format!("$JS.FC.OBJ_{MODELS_BUCKET}.>"),
    ];
    let subscribe = vec![
        format!("{}.>", inbox_prefix(w)),
        crate::CANCEL_SUBJECT.to_owned(),
    ];
    (publish, subscribe)
}

fn quoted(list: &[String]) -> String {
    list.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes a farm's `server.conf` (JetStream under `dir/js`, listening on `127.0.0.1:port`
/// unless `host` says otherwise), `coordinator.creds` and `worker-1.creds`…, each user an
/// nkey. With `tls`, a CA and a server certificate for `host` made with `openssl`, and the
/// server requires TLS.
pub fn init(
    dir: &Path,
    host: &str,
    port: u16,
    workers: usize,
    tls: bool,
) -> Result<FarmInit, FarmError> {
    std::fs::create_dir_all(dir.join("js")).map_err(|e| io_err("cannot create", dir, e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| io_err("cannot read", dir, e))?;
    let scheme = if tls { "tls" } else { "nats" };
    let url = format!("{scheme}://{host}:{port}");
    let ca = if tls {
        make_certificates(&dir, host)?;
        Some(PathBuf::from("ca.pem"))
    } else {
        None
    };
    let mut users = Vec::new();
    let user = |name: &str| -> Result<(Credentials, String), FarmError> {
        let kp = nkeys::KeyPair::new_user();
        let seed = kp.seed().map_err(|e| crate::nats("make an nkey", e))?;
        Ok((
            Credentials {
                name: name.to_owned(),
                seed,
                url: url.clone(),
                ca: ca.clone(),
                path: PathBuf::new(),
            },
            kp.public_key(),
        ))
    };
    let (coord, coord_pub) = user("coordinator")?;
    let coordinator = dir.join("coordinator.creds");
    coord.write(&coordinator)?;
    // The coordinator runs the farm: every subject.
    users.push(format!("    {{ nkey: \"{coord_pub}\" }}"));
    let mut worker_files = Vec::new();
    for i in 1..=workers {
        let name = format!("worker-{i}");
        let (c, public) = user(&name)?;
        let path = dir.join(format!("{name}.creds"));
        c.write(&path)?;
        worker_files.push(path);
        let (publish, subscribe) = worker_permissions(&name);
        users.push(format!(
            "    {{ nkey: \"{public}\", permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }} }} }}",
            quoted(&publish),
            quoted(&subscribe)
        ));
    }
    let mut conf = format!(
        "# Made by `mintframe farm init`; start with `scripts/farm start {dir}` or\n# `nats-server -c {conf}`.\nhost: \"{host}\"\nport: {port}\nserver_name: mintframe_farm\nmax_payload: 1MB\njetstream {{\n  store_dir: \"{js}\"\n  max_memory_store: 64MB\n  max_file_store: 20GB\n}}\nauthorization {{\n  users = [\n{users}\n  ]\n}}\n",
        dir = dir.display(),
        conf = dir.join("server.conf").display(),
        js = dir.join("js").display(),
        users = users.join("\n"),
    );
    if tls {
        conf.push_str(&format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  timeout: 5\n}}\n",
            dir.join("server-cert.pem").display(),
            dir.join("server-key.pem").display()
        ));
    }
    let config = dir.join("server.conf");
    write_private(&config, conf.as_bytes())?;
    Ok(FarmInit {
        dir,
        config,
        url,
        coordinator,
        workers: worker_files,
    })
}

/// A CA (`ca.pem`) and a server certificate for `host` (as an IP or DNS name), by the
/// `openssl` command.
fn make_certificates(dir: &Path, host: &str) -> Result<(), FarmError> {
    let run = |args: &[&str]| -> Result<(), FarmError> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| io_err("cannot run", Path::new("openssl"), e))?;
        if !out.status.success() {
            return Err(FarmError::Nats {
                action: "make the farm's TLS certificates with openssl",
                reason: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(())
    };
    let san = if host.parse::<std::net::IpAddr>().is_ok() {
        format!("subjectAltName=IP:{host}")
    } else {
        format!("subjectAltName=DNS:{host}")
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=Mintframe farm CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])?;
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &format!("/CN={host}"),
        "-keyout",
        "server-key.pem",
        "-out",
        "server.csr",
    ])?;
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        format!("{san}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"),
    )
    .map_err(|e| io_err("cannot write", &ext, e))?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "3650",
        "-out",
        "server-cert.pem",
        "-extfile",
        "server.ext",
    ])?;
    Ok(())
}
