//! The studio window driven for real: Xvfb, tauri-driver and WebKitWebDriver, the app binary,
//! and a real IPFS node. This is the harness every later screen's test uses.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use mintframe_tests::{
    Display, Guard, Keyring, bin, free_port_with, mintframe, run, sprite_checker, stderr, stdout,
    wait_until,
};
use serde_json::{Value, json};

/// One studio window at a time: two tauri-driver/WebKitWebDriver sessions started together
/// have dropped each other's session request (seen in CI: "Peer disconnected").
static ONE_WINDOW: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_window() -> std::sync::MutexGuard<'static, ()> {
    ONE_WINDOW.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every WebDriver call fails after 60 s rather than hanging the test run.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// A WebDriver session against tauri-driver.
struct Session {
    base: String,
    id: String,
}

impl Session {
    fn new(port: u16, app: &std::path::Path) -> Session {
        let base = format!("http://127.0.0.1:{port}");
        let caps = json!({
            "capabilities": {
                "alwaysMatch": { "tauri:options": { "application": app } }
            }
        });
        let mut resp: Value = agent()
            .post(format!("{base}/session"))
            .send_json(&caps)
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        let id = resp["value"]["sessionId"].take();
        Session {
            base,
            id: id.as_str().unwrap().to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.id)
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let resp: Result<Value, _> = agent()
            .post(self.url("/elements"))
            .send_json(json!({ "using": "css selector", "value": css }))
            .and_then(|mut r| r.body_mut().read_json());
        resp.map(|v| {
            v["value"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_object()?.values().next()?.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default()
    }

    fn wait_for(&self, css: &str, timeout: Duration) -> String {
        let mut found = None;
        wait_until(css, timeout, || {
            found = self.find_all(css).into_iter().next();
            found.is_some()
        });
        found.unwrap()
    }

    fn get(&self, path: &str) -> Value {
        let mut v: Value = agent()
            .get(self.url(path))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        v["value"].take()
    }

    fn prop(&self, element: &str, name: &str) -> Value {
        self.get(&format!("/element/{element}/property/{name}"))
    }

    fn text(&self, element: &str) -> String {
        self.get(&format!("/element/{element}/text"))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn attr(&self, element: &str, name: &str) -> String {
        self.get(&format!("/element/{element}/attribute/{name}"))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn click(&self, element: &str) {
        agent()
            .post(self.url(&format!("/element/{element}/click")))
            .send_json(json!({}))
            .unwrap();
    }

    fn type_text(&self, element: &str, text: &str) {
        agent()
            .post(self.url(&format!("/element/{element}/clear")))
            .send_json(json!({}))
            .unwrap();
        agent()
            .post(self.url(&format!("/element/{element}/value")))
            .send_json(json!({ "text": text }))
            .unwrap();
    }

    /// The click event itself, for elements (table rows) whose centre WebKitWebDriver's
    /// pointer click does not reach.
    fn js_click(&self, css: &str) {
        let resp: Value = agent()
            .post(self.url("/execute/sync"))
            .send_json(json!({
                "script": "const e = document.querySelector(arguments[0]); if (!e) return 'missing'; e.click(); return 'ok';",
                "args": [css]
            }))
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        assert_eq!(resp["value"], "ok", "{css}: {resp}");
    }

    fn script(&self, js: &str) -> Value {
        let mut v: Value = agent()
            .post(self.url("/execute/sync"))
            .send_json(json!({ "script": js, "args": [] }))
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        v["value"].take()
    }

    /// An element's `textContent`, which does not depend on layout (WebDriver's element text
    /// is empty for an element not laid out yet, as a loaded machine shows).
    fn content(&self, css: &str) -> String {
        let js = format!(
            "return (document.querySelector({css:?}) || {{ textContent: '' }}).textContent;"
        );
        self.script(&js).as_str().unwrap_or_default().to_owned()
    }

    fn close(self) {
        agent()
            .delete(format!("{}/session/{}", self.base, self.id))
            .call()
            .unwrap();
    }
}

/// A display and tauri-driver, ready for a WebDriver session on `port`; both end when dropped.
struct Studio {
    _driver: Guard,
    _display: Display,
    // A Secret Service of its own: tokens set through the window go there, never to the
    // user's keyring.
    _keyring: Keyring,
    port: u16,
}

impl Studio {
    fn start(data: &std::path::Path, api: &str) -> Studio {
        let display = Display::start();
        let keyring = Keyring::start();
        let port = free_port_with(&[1]);
        let driver = Guard(
            Command::new(tauri_driver())
                .args([
                    "--port",
                    &port.to_string(),
                    "--native-port",
                    &(port + 1).to_string(),
                ])
                .env("DISPLAY", &display.name)
                .env("MINTFRAME_DATA_DIR", data)
                .env("MINTFRAME_IPFS_API", api)
                .env("XDG_RUNTIME_DIR", std::env::temp_dir())
                .env("DBUS_SESSION_BUS_ADDRESS", keyring.address())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Both ports: a session asked for before WebKitWebDriver listens on the native port is
        // dropped ("Peer disconnected"), which a loaded CI machine made likely.
        wait_until("tauri-driver", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", port + 1)).is_ok()
        });
        Studio {
            _driver: driver,
            _display: display,
            _keyring: keyring,
            port,
        }
    }
}

impl Drop for Studio {
    /// tauri-driver's own child (WebKitWebDriver) would outlive it: it goes first.
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &self._driver.0.id().to_string()])
            .status();
    }
}

fn tauri_driver() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    [
        home.join(".cargo/bin/tauri-driver"),
        PathBuf::from("/usr/local/bin/tauri-driver"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .expect("tauri-driver is not installed: run scripts/setup")
}

#[test]
fn the_studio_window_shows_the_doctor_report_and_the_library() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // The node's API port and the neighbours it derives its other ports from.
    let api_port = free_port_with(&[-1000, -999, 1, 4088]);
    let api = format!("http://127.0.0.1:{api_port}");
    let node = run(mintframe(&data)
        .env("MINTFRAME_IPFS_API", &api)
        .args(["ipfs", "start"]));
    assert!(node.status.success(), "ipfs start: {}", stderr(&node));
    // Stops the node however the test ends.
    struct StopNode(PathBuf, String);
    impl Drop for StopNode {
        fn drop(&mut self) {
            let _ = run(mintframe(&self.0)
                .env("MINTFRAME_IPFS_API", &self.1)
                .args(["ipfs", "stop"]));
        }
    }
    let _stop = StopNode(data.clone(), api.clone());

    let sprite = work.path().join("slime bounce.gif");
    std::fs::write(&sprite, mintframe_tests::many_frame_gif(3)).unwrap();
    let out = run(mintframe(&data).args(["library", "import"]).arg(&sprite));
    assert!(out.status.success(), "{}", stderr(&out));
    let asset_id = stdout(&out)
        .trim()
        .strip_prefix("imported ")
        .unwrap()
        .to_owned();

    let studio = Studio::start(&data, &api);
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor='done']", Duration::from_secs(60));

    for component in ["cpu", "gpu", "ffmpeg", "ipfs", "data"] {
        let el = session.wait_for(
            &format!(".check[data-component='{component}']"),
            Duration::from_secs(5),
        );
        let status = session.attr(&el, "data-status");
        assert_eq!(status, "ok", "{component}: {}", session.text(&el));
    }
    let ipfs = session.wait_for(
        ".check[data-component='ipfs'] .summary",
        Duration::from_secs(5),
    );
    assert!(
        session.text(&ipfs).contains(&api),
        "{}",
        session.text(&ipfs)
    );
    let state = session.wait_for("#doctor-state", Duration::from_secs(5));
    assert!(
        session.text(&state).contains("every component found"),
        "{}",
        session.text(&state)
    );

    let tab = session.wait_for(".tab[data-screen='library']", Duration::from_secs(5));
    session.click(&tab);
    // The caption as the DOM holds it (WebKitWebDriver's element text is empty for grid tiles).
    let css = format!("#library-grid .tile[data-asset='{asset_id}'] figcaption");
    let mut text = String::new();
    wait_until("the tile's caption", Duration::from_secs(20), || {
        text = session
            .script(&format!(
                "const e = document.querySelector(\"{css}\"); return e ? e.textContent : '';"
            ))
            .as_str()
            .unwrap_or_default()
            .to_owned();
        text.contains("slime bounce") && text.contains("animation")
    });

    session.close();
}

/// `library export ID DEST` through the CLI, and the PNG it wrote.
fn exported_png(data: &std::path::Path, id: &str, dest: &std::path::Path) -> PathBuf {
    let out = run(mintframe(data).args(["library", "export", id]).arg(dest));
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::read_dir(dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap()
}

/// Waits for `model` among the `<select id=select>`'s options and chooses it, as a user would
/// (the studio preselects the built-in offline model; tests that need the tiny one say so).
fn pick_model(session: &Session, select: &str, model: &str) {
    session.wait_for(
        &format!("#{select} option[value='{model}']"),
        Duration::from_secs(20),
    );
    let v = session.script(&format!(
        "const s = document.getElementById({select:?}); s.value = {model:?}; \
         s.dispatchEvent(new Event('change')); return s.value;"
    ));
    assert_eq!(v, model, "#{select}");
}

/// The Generate screen end to end, as a fresh install's first Generate: the built-in offline
/// model preselected, its defaults, a progress row that ends in `succeeded`, the image shown (a
/// red potion, by the checker that knows nothing of how the model was trained), and the asset
/// with its recipe in the library.
#[test]
fn the_first_generate_draws_a_red_potion_with_the_preselected_offline_model() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));

    let tab = session.wait_for(".tab[data-screen='generate']", Duration::from_secs(5));
    session.click(&tab);
    let option = session.wait_for(
        "#gen-model option[value='mintframe-sprites']",
        Duration::from_secs(20),
    );
    assert!(session.text(&option).contains("Mintframe Sprites"));
    assert_eq!(
        session.script("return document.getElementById('gen-model').value;"),
        "mintframe-sprites",
        "the offline model is not preselected"
    );
    let license = session.wait_for("#gen-license[data-license='mit']", Duration::from_secs(5));
    assert!(session.text(&license).contains("Licence: mit"));
    let prompt = session.wait_for("#gen-prompt", Duration::from_secs(5));
    session.type_text(&prompt, "a red potion");
    let seed = session.wait_for("#gen-seed", Duration::from_secs(5));
    session.type_text(&seed, "1234");
    let steps = session.wait_for("#gen-steps", Duration::from_secs(5));
    let run_button = session.wait_for("#gen-run", Duration::from_secs(5));
    session.click(&run_button);

    let done = session.wait_for(
        ".gen-job[data-state='succeeded'], .gen-job[data-state='failed']",
        Duration::from_secs(120),
    );
    assert_eq!(
        session.attr(&done, "data-state"),
        "succeeded",
        "{}",
        session.text(&done)
    );
    // The row's bar followed the job's events up to the end.
    assert_eq!(
        session
            .prop(
                &session.find_all(".gen-job[data-state='succeeded'] progress")[0],
                "value"
            )
            .as_f64(),
        Some(1.0),
        "the progress bar did not reach 100 %"
    );
    let img = session.wait_for("#gen-results figure img", Duration::from_secs(20));
    assert!(
        session
            .attr(&img, "src")
            .starts_with("data:image/png;base64,")
    );

    // A long job, cancelled from its row: it ends `cancelled` and adds nothing to the library.
    // New rows go first, so `:first-child` is this job's.
    session.type_text(&steps, "1000");
    let width = session.wait_for("#gen-width", Duration::from_secs(5));
    session.type_text(&width, "64");
    let height = session.wait_for("#gen-height", Duration::from_secs(5));
    session.type_text(&height, "64");
    session.click(&run_button);
    let cancel = session.wait_for(
        "#gen-jobs .gen-job:first-child[data-state='running'] button.cancel",
        Duration::from_secs(60),
    );
    session.click(&cancel);
    let ended = session.wait_for(
        "#gen-jobs .gen-job:first-child:not([data-state='running']):not([data-state='queued'])",
        Duration::from_secs(120),
    );
    assert_eq!(
        session.attr(&ended, "data-state"),
        "cancelled",
        "{}",
        session.text(&ended)
    );

    // The library shows the image through the headless renderer, and re-renders it tiled.
    let tab = session.wait_for(".tab[data-screen='library']", Duration::from_secs(5));
    session.click(&tab);
    session.wait_for("#library-grid .tile[data-asset]", Duration::from_secs(20));
    session.wait_for(
        "#library-grid img.thumb[src^='data:image/png']",
        Duration::from_secs(30),
    );
    // Search by prompt words: the slime is found, a knight is not.
    let search = session.wait_for("#library-search", Duration::from_secs(5));
    session.type_text(&search, "knight");
    wait_until("no tile for a knight", Duration::from_secs(10), || {
        session.find_all("#library-grid .tile").is_empty()
    });
    session.type_text(&search, "red potion");
    session.wait_for("#library-grid .tile[data-asset]", Duration::from_secs(10));
    session.js_click("#library-grid .tile[data-asset]");
    session.wait_for("#asset-detail:not([hidden])", Duration::from_secs(30));
    let preview = session.wait_for(
        "#asset-preview[src^='data:image/png'], #asset-preview[data-error]",
        Duration::from_secs(30),
    );
    assert!(
        session.attr(&preview, "src").starts_with("data:image/png"),
        "{}",
        session.attr(&preview, "data-error")
    );
    let tile = session.wait_for("#preview-tile", Duration::from_secs(5));
    session.click(&tile);
    session.wait_for(
        "#asset-preview[data-spec*='\"tile\":true']",
        Duration::from_secs(30),
    );
    // As a 2×2 sheet of 16×16 frames, played as a GIF.
    session.click(&tile);
    let frame = session.wait_for("#preview-frame", Duration::from_secs(5));
    session.type_text(&frame, "16x16");
    let play = session.wait_for("#preview-animate", Duration::from_secs(5));
    session.click(&play);
    session.wait_for(
        "#asset-preview[src^='data:image/gif']",
        Duration::from_secs(30),
    );
    // "Open preview" starts the native window as its own process on the same display.
    let open = session.wait_for("#asset-open-preview", Duration::from_secs(5));
    session.click(&open);
    let state = session.wait_for("#asset-open-state[data-pid]", Duration::from_secs(30));
    let pid = session.attr(&state, "data-pid");
    assert!(
        !pid.is_empty(),
        "the preview did not start: {}",
        session.text(&state)
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains(" preview ") && cmdline.contains("--frame 16x16"),
        "{cmdline}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the preview window exited on its own"
    );
    let _ = Command::new("kill").arg(&pid).status();
    session.close();

    let out = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the cancelled job kept an image: {list}"
    );
    let id = list[0]["id"].as_str().unwrap();
    let out = run(mintframe(&data).args(["library", "show", id, "--json"]));
    let asset: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(asset["recipe"]["prompt"], "a red potion");
    assert_eq!(asset["recipe"]["seed"], 1234);
    assert_eq!(asset["recipe"]["steps"], 30);
    assert_eq!(asset["recipe"]["model_id"], "mintframe-sprites");
    let png = exported_png(&data, id, &work.path().join("export"));
    let (w, h, rgb) = sprite_checker::read_rgb(&png);
    assert_eq!((w, h), (32, 32));
    let img = sprite_checker::Image {
        width: w,
        height: h,
        rgb: &rgb,
    };
    let (kind, hue) = sprite_checker::check(&img).expect("an item");
    assert_eq!(kind, sprite_checker::Kind::Potion);
    assert_eq!(hue.map(sprite_checker::hue_name), Some("red"));
}

/// The worker through the real window: a second Generate while one runs waits in the queue; the
/// studio killed mid-generation resumes the job by itself when it starts again, and the image is
/// byte-identical to an uninterrupted run of the same job.
#[test]
fn a_second_generate_waits_and_a_killed_studio_resumes_its_job_to_identical_bytes() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let prompt = "a queued slime, pixel art";
    let (first, second) = {
        let studio = Studio::start(&data, "http://127.0.0.1:1");
        let session = Session::new(studio.port, &bin("mintframe-studio"));
        session.wait_for("body[data-doctor]", Duration::from_secs(60));
        let tab = session.wait_for(".tab[data-screen='generate']", Duration::from_secs(5));
        session.click(&tab);
        pick_model(&session, "gen-model", "tiny-sd");
        let input = session.wait_for("#gen-prompt", Duration::from_secs(5));
        session.type_text(&input, prompt);
        let seed = session.wait_for("#gen-seed", Duration::from_secs(5));
        session.type_text(&seed, "99");
        let steps = session.wait_for("#gen-steps", Duration::from_secs(5));
        session.type_text(&steps, "400");
        let run_button = session.wait_for("#gen-run", Duration::from_secs(5));
        session.click(&run_button);
        let running = session.wait_for(
            "#gen-jobs .gen-job[data-state='running']",
            Duration::from_secs(60),
        );
        let first = session.attr(&running, "data-job");
        session.type_text(&steps, "2");
        session.click(&run_button);
        let queued = session.wait_for(
            "#gen-jobs .gen-job:first-child[data-state='queued']",
            Duration::from_secs(30),
        );
        let second = session.attr(&queued, "data-job");
        assert_ne!(first, second);
        assert!(
            session.text(&queued).contains("queued"),
            "{}",
            session.text(&queued)
        );
        // Still queued while the first denoises: one diffusion job at a time.
        wait_until(
            "the first job to pass step 5",
            Duration::from_secs(120),
            || {
                let row = session.find_all(&format!(".gen-job[data-job='{first}'] .stage"));
                row.first().is_some_and(|r| {
                    let t = session.text(r);
                    t.split_whitespace()
                        .nth(1)
                        .and_then(|s| s.split('/').next()?.parse::<u32>().ok())
                        .is_some_and(|n| n >= 5)
                })
            },
        );
        assert!(
            !session
                .find_all(&format!(
                    ".gen-job[data-job='{second}'][data-state='queued']"
                ))
                .is_empty(),
            "the second job did not wait for the first"
        );
        // Killed as a crash would: no chance to clean up.
        let killed = Command::new("pkill")
            .args(["-KILL", "-f", "target/debug/mintframe-studio"])
            .status()
            .unwrap();
        assert!(killed.success(), "no studio process to kill");
        (first, second)
    };
    let out = run(mintframe(&data).args(["jobs", "list", "--json"]));
    let jobs: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == first.as_str()),
        "{jobs}"
    );

    // Started again, the studio resumes both jobs by itself, in order.
    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    let tab = session.wait_for(".tab[data-screen='generate']", Duration::from_secs(5));
    session.click(&tab);
    for id in [&first, &second] {
        let row = session.wait_for(
            &format!(".gen-job[data-job='{id}'][data-state='succeeded'], .gen-job[data-job='{id}'][data-state='failed']"),
            Duration::from_secs(300),
        );
        assert_eq!(
            session.attr(&row, "data-state"),
            "succeeded",
            "{}",
            session.text(&row)
        );
    }
    session.close();

    let out = run(mintframe(&data).args(["jobs", "list", "--all", "--json"]));
    let jobs: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let resumed = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == first.as_str())
        .unwrap();
    let asset = resumed["outputs"][0].as_str().unwrap().to_owned();
    let resumed_dir = work.path().join("resumed");
    let out = run(mintframe(&data)
        .args(["library", "export", &asset])
        .arg(&resumed_dir));
    assert!(out.status.success(), "{}", stderr(&out));

    // The same job, uninterrupted, in a clean data folder.
    let clean = work.path().join("clean");
    let out = run(mintframe(&clean)
        .args([
            "generate", prompt, "-m", "tiny-sd", "--seed", "99", "--steps", "400", "-o",
        ])
        .arg(work.path().join("uninterrupted")));
    assert!(out.status.success(), "{}", stderr(&out));
    let png = |dir: &std::path::Path| {
        let p = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "png"))
            .unwrap();
        std::fs::read(p).unwrap()
    };
    assert!(
        png(&resumed_dir) == png(&work.path().join("uninterrupted")),
        "the resumed job made different bytes"
    );
}

/// The Publish screen end to end: pick three assets, check offline, publish to the real node,
/// and find the same CIDs, the links resolving, and the record in the history.
#[test]
fn the_publish_screen_publishes_a_collection_to_the_local_node() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let node = crate::ipfs::Node::start(&data);
    let ids = crate::publish::three_assets(&data, work.path());

    let studio = Studio::start(&data, &node.api);
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    let tab = session.wait_for(".tab[data-screen='publish']", Duration::from_secs(5));
    session.click(&tab);
    for id in &ids {
        let b = session.wait_for(
            &format!("#publish-assets input[data-asset='{id}']"),
            Duration::from_secs(20),
        );
        session.click(&b);
    }
    // A pinning service added through the screen; its token goes to the keyring.
    let token = format!("gui-{}", std::process::id());
    let svc = crate::publish::PinningService::start(&token);
    let svc_name = format!("guisvc{}", std::process::id());
    session.click(&session.wait_for("#pub-targets summary", Duration::from_secs(5)));
    session.type_text(
        &session.wait_for("#svc-name", Duration::from_secs(5)),
        &svc_name,
    );
    session.type_text(
        &session.wait_for("#svc-endpoint", Duration::from_secs(5)),
        &svc.url,
    );
    session.type_text(
        &session.wait_for("#svc-token", Duration::from_secs(5)),
        &token,
    );
    session.click(&session.wait_for("#svc-add", Duration::from_secs(5)));
    let pick = session.wait_for(
        &format!("#pub-services input[data-service='{svc_name}']:not([disabled])"),
        Duration::from_secs(20),
    );
    session.click(&pick);
    let name = session.wait_for("#pub-name", Duration::from_secs(5));
    session.type_text(&name, "pinned-Slimes");
    let traits = session.wait_for("#pub-traits", Duration::from_secs(5));
    session.type_text(&traits, "Rarity=common");
    let check = session.wait_for("#pub-check", Duration::from_secs(5));
    session.click(&check);
    session.wait_for(
        "#publish-report[data-status='planned']",
        Duration::from_secs(60),
    );
    let cid_el = session.wait_for("#pub-metadata-cid", Duration::from_secs(5));
    let planned = session.text(&cid_el);
    assert!(planned.starts_with("ipfs://Qm"), "{planned}");

    let run_button = session.wait_for("#pub-run", Duration::from_secs(5));
    session.click(&run_button);
    session.wait_for(
        "#publish-report[data-status='published']",
        Duration::from_secs(120),
    );
    let cid_el = session.wait_for("#pub-metadata-cid", Duration::from_secs(5));
    assert_eq!(
        session.text(&cid_el),
        planned,
        "published CIDs are the planned ones"
    );
    let base = session.wait_for("#pub-base-uri", Duration::from_secs(5));
    assert_eq!(session.text(&base), planned);
    session.wait_for(
        "#publish-table tr[data-status='published']",
        Duration::from_secs(20),
    );
    assert_eq!(
        session
            .find_all("#pub-remote-pins li[data-status='pinned']")
            .len(),
        2
    );
    session.close();
    let o = run(mintframe(&data).args(["publish", "service", "remove", &svc_name]));
    assert!(o.status.success(), "{}", stderr(&o));

    let cid = planned.trim_start_matches("ipfs://").trim_end_matches('/');
    let token: Value =
        serde_json::from_slice(&crate::publish::cat(&node.api, &format!("{cid}/2"))).unwrap();
    assert_eq!(token["name"], "pinned-Slimes #2");
    assert!(token["animation_url"].as_str().unwrap().ends_with("/2.gif"));
}

/// Arweave from the Publish screen: the wallet imported by its path (the key goes from the file
/// to the window's own keyring, never through the page), tokens minted on the local gateway,
/// the price shown and confirmed before anything is sent, the collection published with
/// `ar://` links that resolve through the gateway.
#[test]
fn the_publish_screen_imports_a_wallet_shows_the_price_and_publishes_to_arweave() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let gw = crate::arweave::Arlocal::start();
    let (data, ids, files) = crate::arweave::library_of(work.path(), 3, 32);
    let key = crate::arweave::wallet(work.path());

    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    session.click(&session.wait_for(".tab[data-screen='publish']", Duration::from_secs(5)));
    for id in &ids {
        let b = session.wait_for(
            &format!("#publish-assets input[data-asset='{id}']"),
            Duration::from_secs(20),
        );
        session.click(&b);
    }
    session.type_text(
        &session.wait_for("#pub-name", Duration::from_secs(5)),
        "Ar-Slimes",
    );
    pick_model(&session, "pub-to", "arweave");
    session.script(&format!(
        "document.getElementById('pub-ar-gateway').value = {:?};",
        gw.url
    ));
    session.click(&session.wait_for("#pub-arweave-target summary", Duration::from_secs(5)));
    session.type_text(
        &session.wait_for("#pub-ar-key", Duration::from_secs(5)),
        &key.display().to_string(),
    );
    session.click(&session.wait_for("#pub-ar-import", Duration::from_secs(5)));
    let wallet = session.wait_for("#pub-ar-wallet", Duration::from_secs(5));
    wait_until("the imported wallet", Duration::from_secs(20), || {
        session.text(&wallet).contains("kept in keyring")
    });
    session.click(&session.wait_for("#pub-ar-mint", Duration::from_secs(5)));
    let state = session.wait_for("#publish-state", Duration::from_secs(5));
    wait_until("minted tokens", Duration::from_secs(20), || {
        session.text(&state).contains("holds 10 AR")
    });
    // The first Publish only shows the price.
    session.click(&session.wait_for("#pub-run", Duration::from_secs(5)));
    let q = session.wait_for("#pub-ar-quote[data-enough='true']", Duration::from_secs(60));
    let shown = session.text(&q);
    assert!(
        shown.contains("bytes cost") && shown.contains("holds 10 AR"),
        "{shown}"
    );
    assert!(
        session
            .find_all("#publish-table tr[data-status]")
            .is_empty()
    );
    session.click(&session.wait_for("#pub-ar-confirm:not([disabled])", Duration::from_secs(5)));
    session.click(&session.wait_for("#pub-run", Duration::from_secs(5)));
    session.wait_for(
        "#publish-report[data-status='published']",
        Duration::from_secs(120),
    );
    let meta = session.text(&session.wait_for("#pub-metadata-cid", Duration::from_secs(5)));
    assert!(meta.starts_with("ar://") && meta.ends_with('/'), "{meta}");
    let manifest = meta.trim_start_matches("ar://").trim_end_matches('/');
    session.close();
    let token: Value = serde_json::from_slice(&gw.get(&format!("{manifest}/2")).unwrap()).unwrap();
    assert_eq!(token["name"], "Ar-Slimes #2");
    let image = token["image"].as_str().unwrap().trim_start_matches("ar://");
    assert_eq!(gw.get(image).unwrap(), std::fs::read(&files[2]).unwrap());
}

/// The installable app: `scripts/package --debug` builds the .deb (lintian finds no errors, or
/// the script fails), it installs on this machine, `mintframe doctor` runs from PATH, and the
/// installed studio opens its window and shows the doctor report. Removed again afterwards.
#[test]
fn the_debian_package_installs_and_its_cli_and_studio_run() {
    let _window = one_window();
    let root = mintframe_tests::workspace_root();
    let out = run(Command::new(root.join("scripts/package")).arg("--debug"));
    assert!(
        out.status.success(),
        "scripts/package: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let deb = stdout(&out).lines().last().unwrap().trim().to_owned();
    assert!(deb.ends_with(".deb"), "{deb}");
    let info = run(Command::new("dpkg-deb").args(["--info", &deb]));
    let control = stdout(&info);
    for dep in [
        "libwebkit2gtk-4.1-0",
        "libavcodec",
        "mesa-vulkan-drivers",
        "nodejs",
    ] {
        assert!(control.contains(dep), "no {dep} dependency:\n{control}");
    }
    let files = stdout(&run(Command::new("dpkg-deb").args(["--contents", &deb])));
    for f in [
        "usr/bin/mintframe-studio",
        "usr/bin/mintframe",
        "usr/share/applications/Mintframe.desktop",
        "usr/share/mintframe/ipfs-node/package-lock.json",
        "usr/share/mintframe/models/u2netp.onnx",
        "usr/share/doc/mintframe/copyright",
    ] {
        assert!(
            files.lines().any(|l| l.ends_with(f)),
            "{f} is not in the package:\n{files}"
        );
    }

    let sudo = |args: &[&str]| {
        let root_user = stdout(&run(Command::new("id").arg("-u"))).trim() == "0";
        let mut c = if root_user {
            Command::new(args[0])
        } else {
            let mut c = Command::new("sudo");
            c.arg("-n").arg(args[0]);
            c
        };
        c.args(&args[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut c)
    };
    // Removes the package however the test ends.
    struct Uninstall<F: Fn(&[&str]) -> std::process::Output>(F);
    impl<F: Fn(&[&str]) -> std::process::Output> Drop for Uninstall<F> {
        fn drop(&mut self) {
            let _ = (self.0)(&["dpkg", "--remove", "mintframe"]);
        }
    }
    let o = sudo(&[
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        &deb,
    ]);
    assert!(o.status.success(), "install: {}{}", stdout(&o), stderr(&o));
    let _uninstall = Uninstall(sudo);

    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let doctor = run(Command::new("mintframe")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("MINTFRAME_DATA_DIR", &data)
        .env("MINTFRAME_IPFS_API", "http://127.0.0.1:1")
        .args(["doctor", "--json"]));
    let report: Value = serde_json::from_str(&stdout(&doctor))
        .unwrap_or_else(|e| panic!("doctor from PATH: {e}: {}", stderr(&doctor)));
    let ipfs = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "ipfs")
        .unwrap()
        .to_string();
    assert!(
        ipfs.contains("set up on first start") || ipfs.contains("Kubo"),
        "an installed app looked for its node in the source tree: {ipfs}"
    );

    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(
        studio.port,
        std::path::Path::new("/usr/bin/mintframe-studio"),
    );
    session.wait_for("body[data-doctor='done']", Duration::from_secs(60));
    let state = session.wait_for("#doctor-state", Duration::from_secs(5));
    assert!(
        session.text(&state).starts_with("Mintframe "),
        "{}",
        session.text(&state)
    );
    session.close();
}

/// A file in the library that claims 200000×200000 pixels (put there behind import's back) is a
/// damaged tile with the reason, its neighbours keep their thumbnails, and the studio keeps
/// running: the screen opens again, the other screens still answer.
#[test]
fn a_lying_file_in_the_library_is_a_damaged_tile_and_the_studio_keeps_running() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let good = work.path().join("good.png");
    std::fs::write(&good, mintframe_tests::noise_png(16, 16, 3)).unwrap();
    assert!(
        run(mintframe(&data).args(["library", "import"]).arg(&good))
            .status
            .success()
    );
    let bomb = mintframe_tests::smuggle(
        &data,
        "bomb",
        "image/png",
        &mintframe_tests::lying_png(200_000, 200_000),
    );
    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    for _ in 0..2 {
        let tab = session.wait_for(".tab[data-screen='library']", Duration::from_secs(5));
        session.click(&tab);
        let css = format!(".tile.damaged[data-asset='{bomb}']");
        session.wait_for(&css, Duration::from_secs(30));
        // Read from the page, not a held element: the grid may be drawn again meanwhile.
        let mut reason = String::new();
        wait_until("the damaged tile's reason", Duration::from_secs(10), || {
            reason = session
                .script(&format!(
                    "const t = document.querySelector({css:?}); return t ? t.title : '';"
                ))
                .as_str()
                .unwrap_or_default()
                .to_owned();
            reason.contains("16384 pixels a side")
        });
        session.wait_for(
            ".tile:not(.damaged) img.thumb[src^='data:']",
            Duration::from_secs(30),
        );
        let doctor = session.wait_for(".tab[data-screen='doctor']", Duration::from_secs(5));
        session.click(&doctor);
    }
    // The screen's own check finds it, and its repair quarantines it; the tile stays damaged.
    let tab = session.wait_for(".tab[data-screen='library']", Duration::from_secs(5));
    session.click(&tab);
    session.click(&session.wait_for("#library-check", Duration::from_secs(5)));
    session.wait_for(
        "#library-health[data-healthy='false']",
        Duration::from_secs(30),
    );
    let report = session.content("#library-health");
    assert!(
        report.contains(&format!("asset {bomb} does not decode")),
        "{report}"
    );
    session.click(&session.wait_for("#library-repair:not([hidden])", Duration::from_secs(5)));
    session.wait_for(
        "#library-health[data-healthy='true']",
        Duration::from_secs(30),
    );
    let report = session.content("#library-health");
    assert!(
        report.contains(&format!("asset {bomb} marked damaged")),
        "{report}"
    );
    session.wait_for(
        &format!(".tile.damaged[data-asset='{bomb}']"),
        Duration::from_secs(10),
    );
    assert_eq!(
        std::fs::read_dir(data.join("quarantine")).unwrap().count(),
        1
    );
    session.close();
}

/// The Library's Sprite tools through the window: an imported image, "Pixel art" in PICO-8 with
/// cells of 2, a job row that ends `succeeded`, and the new asset in the grid.
#[test]
fn the_sprite_tools_make_pixel_art_from_a_library_asset() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let src = work.path().join("hero.png");
    std::fs::write(&src, mintframe_tests::noise_png(32, 32, 8)).unwrap();
    let out = run(mintframe(&data).args(["library", "import"]).arg(&src));
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out)
        .trim()
        .strip_prefix("imported ")
        .unwrap()
        .to_owned();
    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    session.click(&session.wait_for(".tab[data-screen='library']", Duration::from_secs(5)));
    session.click(&session.wait_for(
        &format!(".tile[data-asset='{id}']"),
        Duration::from_secs(20),
    ));
    session.wait_for("#sprite-tools:not([hidden])", Duration::from_secs(5));
    session.type_text(&session.wait_for("#px-cell", Duration::from_secs(5)), "2");
    session.click(&session.wait_for("#px-run", Duration::from_secs(5)));
    let row = session.wait_for(
        ".sprite-job[data-state='succeeded'], .sprite-job[data-state='failed']",
        Duration::from_secs(60),
    );
    assert_eq!(
        session.attr(&row, "data-state"),
        "succeeded",
        "{}",
        session.text(&row)
    );
    // Before and after, side by side: the source and the pixel art.
    session.wait_for("#sprite-compare:not([hidden])", Duration::from_secs(20));
    let after = session.wait_for("#sprite-after[data-asset]", Duration::from_secs(5));
    assert!(session.attr(&after, "src").starts_with("data:image/png"));
    assert!(
        session
            .attr(
                &session.wait_for("#sprite-before", Duration::from_secs(5)),
                "src"
            )
            .starts_with("data:image/png")
    );
    let started = std::time::Instant::now();
    loop {
        let captions: Vec<String> = session
            .find_all("#library-grid .tile")
            .iter()
            .map(|c| session.attr(c, "title"))
            .collect();
        if captions.iter().any(|c| c.contains("hero-pixel")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the pixel-art asset is not in the grid: {captions:?}; job row: {}",
            session.text(&row)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    session.close();
    drop(studio);
    // Made once, 16×16, in the palette.
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let made: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == "hero-pixel")
        .collect();
    assert_eq!(made.len(), 1, "{list}");
}

/// The journey in three clicks: Sheet mode on the Generate screen makes directions × frames,
/// turns them into sprites and packs the sheet (three chained jobs); Export writes its files.
/// Then the Library's Sheet view packs frames picked by hand, reordered, into another sheet.
#[test]
fn sheet_mode_makes_a_walk_sheet_in_three_jobs_and_the_sheet_view_packs_picked_frames() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    session.click(&session.wait_for(".tab[data-screen='generate']", Duration::from_secs(5)));
    pick_model(&session, "gen-model", "tiny-sd");
    let set = |session: &Session, id: &str, value: &str| {
        let v = session.script(&format!(
            "const s = document.getElementById({id:?}); s.value = {value:?}; \
             s.dispatchEvent(new Event('change')); return s.value;"
        ));
        assert_eq!(v, value, "#{id}");
    };
    set(&session, "gen-mode", "sheet");
    session.wait_for("#gen-sheet-opts:not([hidden])", Duration::from_secs(5));
    set(&session, "gen-frames", "1");
    assert_eq!(
        session.prop(
            &session.wait_for("#gen-batch", Duration::from_secs(5)),
            "value"
        ),
        "4"
    );
    session.type_text(
        &session.wait_for("#gen-prompt", Duration::from_secs(5)),
        "a knight walking",
    );
    session.type_text(&session.wait_for("#gen-steps", Duration::from_secs(5)), "2");
    session.type_text(&session.wait_for("#gen-seed", Duration::from_secs(5)), "5");
    session.type_text(
        &session.wait_for("#gen-width", Duration::from_secs(5)),
        "64",
    );
    session.type_text(
        &session.wait_for("#gen-height", Duration::from_secs(5)),
        "64",
    );
    session.click(&session.wait_for("#gen-run", Duration::from_secs(5)));
    wait_until(
        "generate, sprite and sheet jobs to succeed",
        Duration::from_secs(180),
        || {
            let failed = session.find_all(".gen-job[data-state='failed']");
            assert!(
                failed.is_empty(),
                "a job failed: {}",
                session.content("#gen-jobs")
            );
            session.find_all(".gen-job[data-state='succeeded']").len() == 3
        },
    );
    session.close();
    drop(studio);

    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let sheet = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "sprite_sheet")
        .unwrap_or_else(|| panic!("no sheet in {list}"))
        .clone();
    assert_eq!(sheet["name"], "hero");
    let sheet_id = sheet["id"].as_str().unwrap().to_owned();
    let o = run(mintframe(&data).args(["library", "show", &sheet_id, "--json"]));
    let detail: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let roles: Vec<&str> = detail["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["role"].as_str().unwrap())
        .collect();
    for role in [
        "main",
        "aseprite-json",
        "aseprite",
        "godot",
        "phaser",
        "texturepacker",
        "grid",
    ] {
        assert!(roles.contains(&role), "no {role} in {roles:?}");
    }
    let sprites: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"].as_str().unwrap_or("").ends_with("-pixel"))
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sprites.len(), 4, "{list}");

    // The Sheet view: export the sheet, then pick two sprites, swap them, pack them.
    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    session.click(&session.wait_for(".tab[data-screen='library']", Duration::from_secs(5)));
    session.wait_for(
        &format!("#library-grid .tile[data-asset='{sheet_id}']"),
        Duration::from_secs(30),
    );
    session.js_click(&format!("#library-grid .tile[data-asset='{sheet_id}']"));
    session.wait_for("#asset-actions:not([hidden])", Duration::from_secs(10));
    session.click(&session.wait_for("#asset-export", Duration::from_secs(5)));
    let state = session.wait_for(
        "#asset-open-state[data-exported^='/']",
        Duration::from_secs(20),
    );
    let folder = std::path::PathBuf::from(session.attr(&state, "data-exported"));
    for f in [
        "hero.png",
        "hero.json",
        "hero.aseprite",
        "hero.tres",
        "hero.phaser.json",
    ] {
        assert!(
            folder.join(f).is_file(),
            "{f} not exported into {}",
            folder.display()
        );
    }
    for id in &sprites[..2] {
        session.wait_for(
            &format!("#library-grid .tile[data-asset='{id}']"),
            Duration::from_secs(30),
        );
        session.js_click(&format!("#library-grid .tile[data-asset='{id}']"));
        session.wait_for(
            &format!("#library-grid .tile.selected[data-asset='{id}']"),
            Duration::from_secs(10),
        );
        session.click(&session.wait_for("#sheet-add:not([disabled])", Duration::from_secs(5)));
    }
    session.wait_for(
        "#sheet-view:not([hidden]) .sheet-frame:nth-child(2)",
        Duration::from_secs(10),
    );
    session.js_click(".sheet-frame:nth-child(2) button[title='earlier']");
    let first = session.wait_for(".sheet-frame:first-child", Duration::from_secs(5));
    assert_eq!(session.attr(&first, "data-asset"), sprites[1]);
    session.type_text(
        &session.wait_for("#sheet-name", Duration::from_secs(5)),
        "picked",
    );
    set(&session, "sheet-directions", "2");
    session.click(&session.wait_for("#sheet-pack", Duration::from_secs(5)));
    // A bound on a job beside the heaviest tests of a cold CI run (the 10,000-token publish,
    // the memory preflight): once seen past 60 s there, so a generous wait, not a timing.
    let row = session.wait_for(
        ".sheet-job[data-state='succeeded'], .sheet-job[data-state='failed']",
        Duration::from_secs(240),
    );
    assert_eq!(
        session.attr(&row, "data-state"),
        "succeeded",
        "{}",
        session.content("#sheet-jobs")
    );
    session.close();
    drop(studio);
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let picked = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "picked")
        .unwrap_or_else(|| panic!("no picked sheet in {list}"));
    assert_eq!(picked["kind"], "sprite_sheet");
}

/// The Generate screen offers an installed LayerDiffuse add-on for models of its base, and the
/// images come out RGBA with the decoder in their recipe.
#[test]
fn the_generate_screen_makes_transparent_images_with_an_installed_add_on() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // A user's add-on for SD 1.x models, decoder only (tiny weights in the real layout).
    let manifests = data.join("models").join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("layerdiffuse-tiny.json"),
        r#"{"id": "layerdiffuse-tiny", "name": "LayerDiffuse (tiny)", "arch": "sd1",
            "layout": "layerdiffuse", "files": [{"path": "vae_transparent_decoder.safetensors"}],
            "license": {"id": "mit", "name": "MIT", "url": "https://opensource.org/license/mit",
                        "commercial": true, "summary": "test weights"},
            "defaults": {"scheduler": "euler_a", "steps": 4, "guidance": 7.5, "width": 64, "height": 64}}"#,
    )
    .unwrap();
    let src = work.path().join("ld");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(
        mintframe_tests::workspace_root().join("tests/fixtures/layerdiffuse/tiny.safetensors"),
        src.join("vae_transparent_decoder.safetensors"),
    )
    .unwrap();
    let o = run(mintframe(&data)
        .args(["models", "import", "layerdiffuse-tiny"])
        .arg(&src));
    assert!(o.status.success(), "{}", stderr(&o));

    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    session.click(&session.wait_for(".tab[data-screen='generate']", Duration::from_secs(5)));
    pick_model(&session, "gen-model", "tiny-sd");
    // Add-ons are a choice, not a model.
    assert!(
        session
            .find_all("#gen-model option[value='layerdiffuse-tiny']")
            .is_empty()
    );
    session.wait_for(
        "#gen-transparent option[value='layerdiffuse-tiny']",
        Duration::from_secs(10),
    );
    let v = session.script(
        "const s = document.getElementById('gen-transparent'); s.value = 'layerdiffuse-tiny'; return s.value;",
    );
    assert_eq!(v, "layerdiffuse-tiny");
    session.type_text(
        &session.wait_for("#gen-prompt", Duration::from_secs(5)),
        "a glass potion",
    );
    session.type_text(&session.wait_for("#gen-steps", Duration::from_secs(5)), "2");
    session.type_text(
        &session.wait_for("#gen-width", Duration::from_secs(5)),
        "64",
    );
    session.type_text(
        &session.wait_for("#gen-height", Duration::from_secs(5)),
        "64",
    );
    session.click(&session.wait_for("#gen-run", Duration::from_secs(5)));
    let done = session.wait_for(
        ".gen-job[data-state='succeeded'], .gen-job[data-state='failed']",
        Duration::from_secs(120),
    );
    assert_eq!(
        session.attr(&done, "data-state"),
        "succeeded",
        "{}",
        session.text(&done)
    );
    session.close();
    drop(studio);
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let o = run(mintframe(&data).args(["library", "show", &id, "--json"]));
    let detail: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        detail["recipe"]["transparent"]["decoder"]["path"]
            .as_str()
            .unwrap()
            .ends_with("vae_transparent_decoder.safetensors"),
        "{detail}"
    );
    let png = exported_png(&data, &id, &work.path().join("out"));
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let r = dec.read_info().unwrap();
    assert_eq!(r.info().color_type, png::ColorType::Rgba);
}

/// The Train screen: library images picked and captioned, a run whose loss curve and
/// checkpoint samples arrive with its events, and "Use this LoRA" taking it to Generate.
#[test]
fn the_train_screen_trains_a_lora_on_picked_images_plots_its_loss_and_generate_uses_it() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let mut files = Vec::new();
    for (i, c) in [[230u8, 20, 30], [200, 10, 10]].iter().enumerate() {
        let p = work.path().join(format!("red{i}.png"));
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, 64, 64);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut wr = enc.write_header().unwrap();
            wr.write_image_data(&c.repeat(64 * 64)).unwrap();
        }
        std::fs::write(&p, out).unwrap();
        files.push(p);
    }
    let o = run(mintframe(&data).args(["library", "import"]).args(&files));
    assert!(o.status.success(), "{}", stderr(&o));

    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    session.click(&session.wait_for(".tab[data-screen='train']", Duration::from_secs(5)));
    wait_until(
        "the library's images listed",
        Duration::from_secs(20),
        || session.find_all("#train-images tr").len() == 2,
    );
    pick_model(&session, "train-model", "tiny-sd");
    let set = |id: &str, value: &str| {
        let v = session.script(&format!(
            "const s = document.getElementById({id:?}); s.value = {value:?}; return s.value;"
        ));
        assert_eq!(v, value, "#{id}");
    };
    session.script(
        "for (const r of document.querySelectorAll('#train-images tr')) { \
           r.querySelector('input.pick').checked = true; \
           r.querySelector('input.caption').value = 'a red potion'; } return 1;",
    );
    set("train-name", "redstyle");
    set("train-resolution", "64");
    set("train-steps", "4");
    set("train-every", "2");
    set("train-lr", "0.001");
    set("train-seed", "3");
    set("train-samples", "a red potion");
    session.click(&session.wait_for("#train-run", Duration::from_secs(5)));
    wait_until(
        "the training job to succeed",
        Duration::from_secs(180),
        || {
            assert!(
                session
                    .find_all(".train-job[data-state='failed']")
                    .is_empty(),
                "training failed: {}",
                session.content("#train-state")
            );
            !session
                .find_all(".train-job[data-state='succeeded']")
                .is_empty()
        },
    );
    wait_until(
        "the loss curve and the samples",
        Duration::from_secs(20),
        || {
            session.find_all(".train-sample").len() == 2
                && session.attr(
                    &session.wait_for("#train-loss", Duration::from_secs(5)),
                    "data-points",
                ) == "4"
        },
    );
    let poly = session
        .script("return document.querySelector('#train-loss polyline').getAttribute('points');");
    assert_eq!(poly.as_str().unwrap().split(' ').count(), 4, "{poly}");
    session.click(&session.wait_for("#train-use:not([hidden])", Duration::from_secs(20)));
    session.wait_for(
        ".tab[data-screen='generate'].active",
        Duration::from_secs(5),
    );
    wait_until(
        "the LoRA chosen in Generate",
        Duration::from_secs(10),
        || session.script("return document.getElementById('gen-lora').value;") == "redstyle",
    );
    pick_model(&session, "gen-model", "tiny-sd");
    session.type_text(
        &session.wait_for("#gen-prompt", Duration::from_secs(5)),
        "a red potion",
    );
    set("gen-steps", "2");
    set("gen-width", "64");
    set("gen-height", "64");
    session.click(&session.wait_for("#gen-run", Duration::from_secs(5)));
    wait_until(
        "the generation to succeed",
        Duration::from_secs(120),
        || {
            assert!(
                session.find_all(".gen-job[data-state='failed']").is_empty(),
                "{}",
                session.content("#generate-state")
            );
            !session
                .find_all(".gen-job[data-state='succeeded']")
                .is_empty()
        },
    );
    session.close();
    drop(studio);
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let made = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["prompt"] == "a red potion")
        .unwrap_or_else(|| panic!("no generation in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let o = run(mintframe(&data).args(["library", "show", &made, "--json"]));
    assert!(
        stdout(&o).contains("redstyle.safetensors"),
        "{}",
        stdout(&o)
    );
}

/// The Character screen: scrub the walk template, drag the neck of its first frame and save the
/// template; make a 4-direction pack from it with the offline model; the sheet and the
/// consistency report show; a re-roll of one frame makes a second pack.
#[test]
fn the_character_screen_edits_a_template_makes_a_pack_and_rerolls_a_frame() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    session.click(&session.wait_for(".tab[data-screen='character']", Duration::from_secs(5)));
    wait_until("the walk template", Duration::from_secs(20), || {
        session.content("#char-frame-label") == "1 / 8"
    });
    // Scrub to frame 3 and back.
    let scrub = |k: u32| {
        session.script(&format!(
            "const s = document.getElementById('char-frame'); s.value = '{k}'; s.dispatchEvent(new Event('input')); return s.value;"
        ));
    };
    scrub(2);
    assert_eq!(session.content("#char-frame-label"), "3 / 8");
    scrub(0);
    // Drag facing s's neck (frame 1) 20 px down, as a pointer would.
    let bundled: Value = serde_json::from_str(
        &std::fs::read_to_string(
            mintframe_tests::workspace_root().join("assets/poses/topdown-walk.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let neck = &bundled["facings"][0]["frames"][0]["joints"][1];
    let (nx, ny) = (neck[0].as_f64().unwrap(), neck[1].as_f64().unwrap());
    let moved = session.script(&format!(
        "const c = document.getElementById('char-skeleton'); const r = c.getBoundingClientRect();
         const at = (x, y) => ({{ clientX: r.left + x * r.width, clientY: r.top + y * r.height, pointerId: 1, bubbles: true }});
         c.dispatchEvent(new PointerEvent('pointerdown', at({nx}, {ny})));
         c.dispatchEvent(new PointerEvent('pointermove', at({nx}, {ny} + 20 / r.height)));
         c.dispatchEvent(new PointerEvent('pointerup', at({nx}, {ny} + 20 / r.height)));
         return r.height;"
    ));
    assert!(moved.as_f64().unwrap_or(0.0) > 0.0, "{moved}");
    session.click(&session.wait_for("#char-save-template", Duration::from_secs(5)));
    wait_until("the template saved", Duration::from_secs(20), || {
        session.content("#char-template-state").starts_with("saved")
    });
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("poses/topdown-walk.json")).unwrap(),
    )
    .unwrap();
    let new_y = saved["facings"][0]["frames"][0]["joints"][1][1]
        .as_f64()
        .unwrap();
    assert!(new_y > ny + 0.02, "the neck moved from {ny} to {new_y}");

    // A small pack: 4 facings × 4 frames, few steps.
    session.type_text(
        &session.wait_for("#char-frames", Duration::from_secs(5)),
        "4",
    );
    session.type_text(
        &session.wait_for("#char-steps", Duration::from_secs(5)),
        "4",
    );
    session.type_text(
        &session.wait_for("#char-seed", Duration::from_secs(5)),
        "21",
    );
    // Kept to the first frame by reference attention and chaining.
    session.script("document.getElementById('char-ref-attn').value = 'on'; return 1;");
    session.type_text(
        &session.wait_for("#char-chain", Duration::from_secs(5)),
        "0.5",
    );
    session.click(&session.wait_for("#char-run", Duration::from_secs(5)));
    // While it draws, "Live preview" opens the native window on the job's live sheet; a pack
    // that finished before the click opens whole (checked below, once its id is known).
    wait_until("the pack's job row", Duration::from_secs(30), || {
        let refused = session.content("#char-state");
        assert!(refused.is_empty(), "the pack was refused: {refused}");
        !session.find_all(".char-job").is_empty()
    });
    let row = session.wait_for(".char-job", Duration::from_secs(5));
    wait_until(
        "the pack's Live preview button",
        Duration::from_secs(30),
        || {
            !session.find_all(".char-job .live-preview").is_empty() || {
                // A failed pack has no button: say why instead of timing out blind.
                let text = session.text(&row);
                assert!(!text.contains("failed"), "the pack failed: {text}");
                false
            }
        },
    );
    session.click(&session.wait_for(".char-job .live-preview", Duration::from_secs(5)));
    let live = session.wait_for(".char-job[data-live-pid]", Duration::from_secs(30));
    let pid = session.attr(&live, "data-live-pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains(" preview "), "{cmdline}");
    let _ = Command::new("kill").arg(&pid).status();
    let done = ".char-job[data-state='succeeded'], .char-job[data-state='failed']";
    let row = session.wait_for(done, Duration::from_secs(240));
    assert_eq!(
        session.attr(&row, "data-state"),
        "succeeded",
        "{}",
        session.text(&row)
    );
    let result = session.wait_for("#char-result:not([hidden])", Duration::from_secs(30));
    let pack_id = session.attr(&result, "data-asset");
    assert!(!pack_id.is_empty());
    assert!(
        cmdline.contains("live.json --watch") || cmdline.contains(&pack_id),
        "the window shows neither the live sheet nor pack {pack_id}: {cmdline}"
    );
    // Asked once the job has ended, the live preview opens the finished pack.
    let job = session.attr(&row, "data-job");
    let pid = session.script(&format!(
        "return window.__TAURI_INTERNALS__.invoke('character_open_live_preview', {{ job: '{job}' }});"
    ));
    let pid = pid
        .as_u64()
        .unwrap_or_else(|| panic!("no window for ended job {job}: {pid}"));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let _ = Command::new("kill").arg(pid.to_string()).status();
    assert!(
        cmdline.contains(" preview ") && cmdline.contains(&pack_id),
        "{cmdline}"
    );
    wait_until("the sheet shows", Duration::from_secs(20), || {
        session
            .attr(
                &session.wait_for("#char-sheet", Duration::from_secs(5)),
                "src",
            )
            .starts_with("data:image/png")
    });
    assert!(
        session.content("#char-report").contains("anchor drift"),
        "{}",
        session.content("#char-report")
    );
    // Only drawn rows are offered for a re-roll: walk e is walk w flipped.
    let offered = session.script(
        "return Array.from(document.querySelectorAll('#char-reroll-row option')).map(o => o.value).join(',');",
    );
    assert_eq!(offered, "walk:s,walk:w,walk:n");
    // Re-roll frame 2 of the first row.
    session.script("document.getElementById('char-reroll-frame').value = '1'; return 1;");
    session.click(&session.wait_for("#char-reroll", Duration::from_secs(5)));
    wait_until("the re-roll", Duration::from_secs(240), || {
        session.find_all(".char-job[data-state='succeeded']").len() == 2
            || !session
                .find_all(".char-job[data-state='failed']")
                .is_empty()
    });
    assert!(
        session
            .find_all(".char-job[data-state='failed']")
            .is_empty()
    );
    session.close();
    drop(studio);
    let o = run(mintframe(&data).args(["library", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let packs = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "sprite_sheet")
        .count();
    assert_eq!(packs, 2, "{list}");
    // Both packs (the re-roll too) kept to the stored reference the screen asked for.
    for a in list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "sprite_sheet")
    {
        let dest = data.join(format!("export-{}", a["id"].as_str().unwrap()));
        let o = run(mintframe(&data)
            .args(["library", "export", a["id"].as_str().unwrap()])
            .arg(&dest));
        assert!(o.status.success(), "{}", stderr(&o));
        let recipe = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".pack.json"))
            .expect("a pack recipe");
        let recipe: Value =
            serde_json::from_str(&std::fs::read_to_string(recipe).unwrap()).unwrap();
        assert_eq!(recipe["spec"]["reference_attention"], true, "{recipe}");
        assert_eq!(recipe["spec"]["chain_strength"].as_f64(), Some(0.5));
        assert!(
            recipe["rows"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["reference"].is_string()),
            "{recipe}"
        );
    }
}

/// The Clip screen: a looping clip with the tiny model (its own motion adapter) plays with its
/// loop score; the shot-list editor's list goes to TOML and back, and renders to a cinematic
/// with its subtitles file in the library.
#[test]
fn the_clip_screen_makes_a_looping_clip_and_renders_the_shot_list_it_edits() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // RIFE weights by name, where the window looks for them (the parity fixture's tiny IFNet).
    std::fs::create_dir_all(data.join("rife")).unwrap();
    std::fs::copy(
        mintframe_tests::workspace_root().join("tests/fixtures/rife/tiny.safetensors"),
        data.join("rife/tiny.safetensors"),
    )
    .unwrap();
    let studio = Studio::start(&data, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    session.click(&session.wait_for(".tab[data-screen='clip']", Duration::from_secs(5)));
    session.wait_for(
        "#clip-model option[value='tiny-sd']",
        Duration::from_secs(20),
    );
    wait_until("tiny-sd chosen", Duration::from_secs(10), || {
        session.script("return document.getElementById('clip-model').value;") == "tiny-sd"
    });
    for (id, v) in [
        ("#clip-frames", "8"),
        ("#clip-width", "64"),
        ("#clip-height", "64"),
        ("#clip-steps", "2"),
        ("#clip-seed", "4"),
    ] {
        session.type_text(&session.wait_for(id, Duration::from_secs(5)), v);
    }
    session.click(&session.wait_for("#clip-run", Duration::from_secs(5)));
    let done = ".clip-job[data-state='succeeded'], .clip-job[data-state='failed']";
    let row = session.wait_for(done, Duration::from_secs(180));
    assert_eq!(
        session.attr(&row, "data-state"),
        "succeeded",
        "{}",
        session.text(&row)
    );
    session.wait_for("#clip-result:not([hidden])", Duration::from_secs(30));
    wait_until("the loop score", Duration::from_secs(20), || {
        session
            .content("#clip-loop-score")
            .starts_with("loop score ")
    });
    wait_until("the clip plays", Duration::from_secs(20), || {
        session
            .attr(
                &session.wait_for("#clip-thumb", Duration::from_secs(5)),
                "src",
            )
            .starts_with("data:image/")
    });
    let clip_asset = session.attr(
        &session.wait_for("#clip-result", Duration::from_secs(5)),
        "data-asset",
    );
    // In-between frames for it with the RIFE weights the studio has.
    session.wait_for("#clip-rife option[value='tiny']", Duration::from_secs(10));
    session.click(&session.wait_for("#clip-interpolate", Duration::from_secs(5)));
    wait_until("the in-between clip", Duration::from_secs(120), || {
        let state = session.content("#clip-state");
        assert!(state.is_empty(), "refused: {state}");
        session
            .content("#clip-loop-score")
            .starts_with("in-between")
    });
    let smooth = session.attr(
        &session.wait_for("#clip-result", Duration::from_secs(5)),
        "data-asset",
    );
    assert_ne!(smooth, clip_asset);
    let o = run(mintframe(&data).args(["library", "show", &smooth, "--json"]));
    let a: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        a["files"].as_array().unwrap().iter().any(|f| f["file_name"]
            .as_str()
            .unwrap()
            .ends_with(".interpolate.json")),
        "{a}"
    );

    // The shot list: three shots to start from; the second one's line is edited, the list goes
    // to TOML, its rate is changed there, and back.
    let rows = session.script("return document.querySelectorAll('#shots-table .shot-row').length;");
    assert_eq!(rows.as_u64(), Some(3));
    session.type_text(
        &session.wait_for(
            ".shot-row[data-shot='1'] input[aria-label='line']",
            Duration::from_secs(5),
        ),
        "Steel for sale.",
    );
    for (id, v) in [
        ("#shots-width", "64"),
        ("#shots-height", "64"),
        ("#shots-name", "smith"),
    ] {
        session.type_text(&session.wait_for(id, Duration::from_secs(5)), v);
    }
    session.click(&session.wait_for("#shots-to-toml", Duration::from_secs(5)));
    wait_until("the TOML", Duration::from_secs(10), || {
        session
            .script("return document.getElementById('shots-toml').value;")
            .as_str()
            .is_some_and(|t| t.contains("line = \"Steel for sale.\"") && t.contains("[[shot]]"))
    });
    session.script(
        "const t = document.getElementById('shots-toml'); t.value = t.value.replace(/^fps = 12$/m, 'fps = 8'); return 1;",
    );
    session.click(&session.wait_for("#shots-from-toml", Duration::from_secs(5)));
    wait_until("the list read back", Duration::from_secs(10), || {
        session.script("return document.getElementById('shots-fps').value;") == "8"
    });
    assert_eq!(
        session
            .script("return document.querySelectorAll('#shots-table .shot-row').length;")
            .as_u64(),
        Some(3)
    );
    session.click(&session.wait_for("#shots-run", Duration::from_secs(5)));
    wait_until("the cinematic's job", Duration::from_secs(20), || {
        let state = session.content("#clip-state");
        assert!(state.is_empty(), "refused: {state}");
        session
            .script("return document.querySelectorAll('.clip-job').length;")
            .as_u64()
            == Some(3)
    });
    wait_until("the cinematic", Duration::from_secs(180), || {
        session
            .script("return Array.from(document.querySelectorAll('.clip-job')).map(r => r.dataset.state).join(',');")
            .as_str()
            .is_some_and(|s| s.split(',').filter(|x| *x == "succeeded").count() == 3 || s.contains("failed"))
    });
    wait_until("the cinematic shown", Duration::from_secs(30), || {
        session.content("#clip-loop-score").starts_with("cinematic")
    });
    let shots_asset = session.attr(
        &session.wait_for("#clip-result", Duration::from_secs(5)),
        "data-asset",
    );
    assert_ne!(shots_asset, clip_asset);
    let o = run(mintframe(&data).args(["library", "show", &shots_asset, "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let asset: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let names: Vec<&str> = asset["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"smith.mp4") && names.contains(&"smith.vtt"),
        "{names:?}"
    );
}

#[test]
fn the_drop_screen_checks_rarity_and_makes_a_drop_on_the_farm_the_farm_screen_shows() {
    let _window = one_window();
    let work = tempfile::tempdir().unwrap();
    let farm = crate::farm::Farm::start(work.path());
    let _workers: Vec<Guard> = (1..=2).map(|i| farm.worker(i)).collect();
    let studio = Studio::start(&farm.coord, "http://127.0.0.1:1");
    let session = Session::new(studio.port, &bin("mintframe-studio"));
    session.wait_for("body[data-doctor]", Duration::from_secs(60));
    session.click(&session.wait_for(".tab[data-screen='drop']", Duration::from_secs(5)));
    // The example spec: rarity first, nothing generated.
    session.click(&session.wait_for("#drop-check", Duration::from_secs(5)));
    wait_until(
        "the rarity table or an error",
        Duration::from_secs(30),
        || {
            !session
                .find_all("#drop-rarity table[data-trait='Color'] tr[data-value='gold']")
                .is_empty()
                || session.content("#drop-state").contains(' ')
        },
    );
    assert!(
        !session
            .find_all("#drop-rarity table[data-trait='Color']")
            .is_empty(),
        "{}",
        session.content("#drop-state")
    );
    assert!(session.content("#drop-summary").contains("12 tokens"));
    session.click(&session.wait_for("#drop-farm", Duration::from_secs(5)));
    session.click(&session.wait_for("#drop-run", Duration::from_secs(5)));
    session.wait_for("#drop-report[data-status='made']", Duration::from_secs(180));
    let by = session.content("#drop-by");
    assert!(by.contains("worker-"), "{by}");
    assert_eq!(session.content("#drop-provenance").len(), 64);

    session.click(&session.wait_for(".tab[data-screen='farm']", Duration::from_secs(5)));
    session.wait_for(
        "#farm-workers tr[data-worker='worker-1']",
        Duration::from_secs(30),
    );
    session.wait_for(
        "#farm-workers tr[data-worker='worker-2']",
        Duration::from_secs(5),
    );
    assert!(session.content("#farm-url").starts_with("tls://127.0.0.1:"));
    session.close();
}
