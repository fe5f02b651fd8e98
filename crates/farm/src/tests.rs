//! Against a real `nats-server` (Debian's; `scripts/setup` installs it).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;

use super::*;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server() -> std::path::PathBuf {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
        .expect("nats-server is installed (scripts/setup)")
}

fn start(dir: &Path) -> (Server, FarmInit) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let made = init(dir, "127.0.0.1", port, 2, false).expect("init");
    let child = Command::new(nats_server())
        .arg("-c")
        .arg(&made.config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (Server(child), made)
}

#[tokio::test]
async fn a_worker_may_use_only_its_own_subjects_and_an_unknown_key_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_server, made) = start(tmp.path());
    let url = FarmUrl::parse(&made.url).expect("url");
    let coordinator = Credentials::read(&made.coordinator).expect("creds");
    let w1 = Credentials::read(&made.workers[0]).expect("creds");

    let coord = connect(&url, &coordinator).await.expect("coordinator");
    let mut results = coord
        .subscribe("mintframe.farm.result.>")
        .await
        .expect("the coordinator sees every result");
    coord.flush().await.expect("flush");

    // Worker 1's violations come back to it as server errors.
    let (tx, mut errors) = tokio::sync::mpsc::unbounded_channel::<String>();
    let client = async_nats::ConnectOptions::new()
        .nkey(w1.seed.clone())
        .custom_inbox_prefix(inbox_prefix("worker-1"))
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e.to_string());
            }
        })
        .connect(url.as_str())
        .await
        .expect("worker 1");
    client
        .publish(result_subject("worker-1", "run"), "mine".into())
        .await
        .expect("publish");
    client
        .publish(result_subject("worker-2", "run"), "not mine".into())
        .await
        .expect("publish");
    let _spy = client
        .subscribe(result_subject("worker-2", "run"))
        .await
        .expect("subscribe is sent");
    client.flush().await.expect("flush");

    let got = tokio::time::timeout(Duration::from_secs(5), results.next())
        .await
        .expect("a result")
        .expect("message");
    assert_eq!(got.subject.as_str(), result_subject("worker-1", "run"));
    assert_eq!(&got.payload[..], b"mine");
    // worker-2's subject never carried worker 1's message.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), results.next())
            .await
            .is_err()
    );
    let mut said = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), errors.recv()).await {
        said.push(e);
        if said
            .iter()
            .filter(|e| e.contains("Permissions Violation"))
            .count()
            >= 2
        {
            break;
        }
    }
    let all = said.join("\n");
    assert!(all.contains("Permissions Violation for Publish"), "{all}");
    assert!(
        all.contains("Permissions Violation for Subscription"),
        "{all}"
    );

    // A key the server does not know.
    let stranger = Credentials {
        name: "worker-1".into(),
        seed: nkeys::KeyPair::new_user().seed().expect("seed"),
        url: made.url.clone(),
        ca: None,
        path: tmp.path().join("stranger.creds"),
    };
    let err = connect(&url, &stranger).await.expect_err("refused");
    assert!(matches!(err, FarmError::Refused { .. }), "{err}");
}
