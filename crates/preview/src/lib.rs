//! The native preview window: a sprite, sheet, GIF or clip playing with the controls a creator
//! checks motion with. egui draws the controls through egui-wgpu, and the frame itself is the
//! `render` crate's composite drawn on the window's own wgpu device (no trip through the CPU).
//!
//! It runs as its own process (`mintframe preview`), because the studio's webview and this
//! window each need the main thread's event loop. Lines on stdin drive it from a script or the
//! studio: `quit`, `play`, `pause`, `frame N`; it prints `ready …` once the first frame is on
//! screen and `exported <path>` after an export.
//!
//! Watching ([`Watch`]) it reloads its source whenever the file changes: a job writing its work
//! so far (a character pack's boards as they finish) plays live. `reloaded: N frames` is printed
//! after each reload.

mod player;

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use eframe::egui;
use mintframe_media::{Rgba, Sequence, encode_png_rgba};
use mintframe_render::{Backdrop, Image, Onion, Renderer, SRGB_VIEW, Sampling, View, wgpu};

pub use player::{Playback, Player, order};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreviewError {
    #[error("there is nothing to preview: the source has no frames")]
    Empty,
    #[error("frame {index} is {got:?} but frame 0 is {want:?}; every frame must be the same size")]
    FrameSize {
        index: usize,
        got: (u32, u32),
        want: (u32, u32),
    },
    #[error("the preview window could not open: {0}")]
    Window(String),
}

/// How the window starts; every one of these can be changed in it.
#[derive(Debug, Clone)]
pub struct Options {
    pub title: String,
    pub fps: u32,
    pub zoom: u32,
    pub tile: bool,
    pub onion: bool,
    pub linear: bool,
    pub grid: bool,
    pub backdrop: Backdrop,
    pub playback: Playback,
    pub paused: bool,
    pub start_frame: usize,
    /// Exports go to `<export_dir>/<export_stem>-frame<N>.png`.
    pub export_dir: PathBuf,
    pub export_stem: String,
    /// A game's background to check the sprite against (offered as the "Image" backdrop).
    pub backdrop_image: Option<Rgba>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            title: "Mintframe preview".into(),
            fps: 12,
            zoom: 4,
            tile: false,
            onion: false,
            linear: false,
            grid: false,
            backdrop: Backdrop::CHECKER,
            playback: Playback::Loop,
            paused: false,
            start_frame: 0,
            export_dir: PathBuf::from("."),
            export_stem: "frame".into(),
            backdrop_image: None,
        }
    }
}

/// A file the window reloads when it changes, and how to read it.
pub struct Watch {
    pub path: PathBuf,
    pub load: Box<dyn Fn() -> Result<Sequence, String>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("path", &self.path).finish()
    }
}

/// How often a watched file's modification time is looked at.
const WATCH_EVERY: Duration = Duration::from_millis(300);

/// Opens the window and returns when it is closed.
pub fn run(seq: Sequence, opts: Options) -> Result<(), PreviewError> {
    run_watched(seq, opts, None)
}

/// [`run`], reloading `watch`'s file whenever it changes.
pub fn run_watched(seq: Sequence, opts: Options, watch: Option<Watch>) -> Result<(), PreviewError> {
    let frames = to_images(&seq)?;
    let (fw, fh) = (frames[0].width as f32, frames[0].height as f32);
    let zoom = opts.zoom.clamp(1, 64) as f32;
    let size = [
        (fw * zoom + 40.0).clamp(520.0, 1600.0),
        (fh * zoom + 150.0).clamp(380.0, 1000.0),
    ];
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(opts.title.clone())
            .with_app_id("mintframe-preview")
            .with_inner_size(size),
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    let title = opts.title.clone();
    eframe::run_native(
        &title,
        native,
        Box::new(move |cc| {
            let rs = cc
                .wgpu_render_state
                .as_ref()
                .ok_or("the window opened without a wgpu device")?;
            let info = rs.adapter.get_info();
            let renderer = Renderer::with_device(
                rs.device.clone(),
                rs.queue.clone(),
                format!("{} ({:?})", info.name, info.backend),
            )?;
            tracing::info!(adapter = renderer.adapter(), "preview window");
            let commands = stdin_commands(cc.egui_ctx.clone());
            let mut app = PreviewApp::new(seq, frames, opts, renderer, commands);
            app.watch = watch.map(|w| {
                let seen = modified(&w.path);
                (w, seen)
            });
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| PreviewError::Window(e.to_string()))
}

fn to_images(seq: &Sequence) -> Result<Vec<Image>, PreviewError> {
    let first = seq.frames.first().ok_or(PreviewError::Empty)?;
    let want = (first.width, first.height);
    seq.frames
        .iter()
        .enumerate()
        .map(|(index, f)| {
            if (f.width, f.height) != want {
                return Err(PreviewError::FrameSize {
                    index,
                    got: (f.width, f.height),
                    want,
                });
            }
            Image::new(f.width, f.height, f.data.clone()).map_err(|_| PreviewError::FrameSize {
                index,
                got: (f.width, f.height),
                want,
            })
        })
        .collect()
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn stdin_commands(ctx: egui::Context) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line.trim().to_owned()).is_err() {
                break;
            }
            ctx.request_repaint();
        }
    });
    rx
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BackdropChoice {
    Checker,
    Colour([u8; 3]),
    Image,
}

#[derive(Debug, Clone, PartialEq)]
struct Shown {
    frame: usize,
    prev: usize,
    next: usize,
    zoom: u32,
    tile: bool,
    onion: bool,
    linear: bool,
    grid: bool,
    backdrop: BackdropChoice,
}

struct PreviewApp {
    frames: Vec<Image>,
    durations_ms: Vec<Option<u32>>,
    tags: Vec<mintframe_media::Tag>,
    tag: Option<usize>,
    player: Player,
    playback: Playback,
    fps: u32,
    file_timing: bool,
    zoom: u32,
    tile: bool,
    onion: bool,
    linear: bool,
    grid: bool,
    backdrop: BackdropChoice,
    renderer: Renderer,
    texture: Option<(egui::TextureId, [u32; 2])>,
    shown: Option<Shown>,
    last_tick: Instant,
    commands: mpsc::Receiver<String>,
    announced: bool,
    export_dir: PathBuf,
    export_stem: String,
    backdrop_image: Option<Image>,
    status: String,
    /// The watched file and the modification time last loaded.
    watch: Option<(Watch, Option<SystemTime>)>,
    last_check: Instant,
}

impl PreviewApp {
    fn new(
        seq: Sequence,
        frames: Vec<Image>,
        opts: Options,
        renderer: Renderer,
        commands: mpsc::Receiver<String>,
    ) -> PreviewApp {
        let mut player = Player::new(frames.len());
        player.select(frames.len(), None, opts.playback);
        player.seek_frame(opts.start_frame.min(frames.len() - 1));
        player.playing = !opts.paused;
        let file_timing = seq.durations_ms.iter().any(Option::is_some);
        PreviewApp {
            durations_ms: seq.durations_ms,
            tags: seq.tags,
            frames,
            tag: None,
            player,
            playback: opts.playback,
            fps: opts.fps.clamp(1, 120),
            file_timing,
            zoom: opts.zoom.clamp(1, 64),
            tile: opts.tile,
            onion: opts.onion,
            linear: opts.linear,
            grid: opts.grid,
            backdrop: match (opts.backdrop, &opts.backdrop_image) {
                (_, Some(_)) => BackdropChoice::Image,
                (Backdrop::Solid(c), None) => BackdropChoice::Colour(c),
                (Backdrop::Checker { .. }, None) => BackdropChoice::Checker,
            },
            backdrop_image: opts
                .backdrop_image
                .and_then(|b| Image::new(b.width, b.height, b.data).ok()),
            renderer,
            texture: None,
            shown: None,
            last_tick: Instant::now(),
            commands,
            announced: false,
            export_dir: opts.export_dir,
            export_stem: opts.export_stem,
            status: String::new(),
            watch: None,
            last_check: Instant::now(),
        }
    }

    /// Reloads the watched file when it changed since the last look; a file that is gone or
    /// half-written keeps the frames shown and says why.
    fn poll_watch(&mut self) {
        if self.last_check.elapsed() < WATCH_EVERY {
            return;
        }
        self.last_check = Instant::now();
        let Some((w, seen)) = &mut self.watch else {
            return;
        };
        let now = modified(&w.path);
        if now.is_none() || now == *seen {
            return;
        }
        *seen = now;
        match (w.load)().and_then(|seq| {
            to_images(&seq)
                .map(|frames| (seq, frames))
                .map_err(|e| e.to_string())
        }) {
            Ok((seq, frames)) => self.replace(seq, frames),
            Err(e) => self.status = format!("reload: {e}"),
        }
    }

    /// Shows new frames in place of the old, keeping the chosen tag (by name) and frame.
    fn replace(&mut self, seq: Sequence, frames: Vec<Image>) {
        let tag_name = self
            .tag
            .and_then(|t| self.tags.get(t))
            .map(|t| t.name.clone());
        let at = self.player.frame();
        let playing = self.player.playing;
        self.file_timing = self.file_timing || seq.durations_ms.iter().any(Option::is_some);
        self.durations_ms = seq.durations_ms;
        self.tags = seq.tags;
        self.frames = frames;
        self.tag = tag_name.and_then(|n| self.tags.iter().position(|t| t.name == n));
        self.reselect();
        self.player.seek_frame(at.min(self.frames.len() - 1));
        self.player.playing = playing;
        self.shown = None;
        self.status = format!("reloaded {} frames", self.frames.len());
        println!("reloaded: {} frames", self.frames.len());
    }

    fn duration_ms(&self, frame: usize) -> f64 {
        match self.durations_ms.get(frame).copied().flatten() {
            Some(ms) if self.file_timing => f64::from(ms),
            _ => 1000.0 / f64::from(self.fps.max(1)),
        }
    }

    fn reselect(&mut self) {
        let tag = self.tag.and_then(|t| self.tags.get(t));
        self.player.select(self.frames.len(), tag, self.playback);
    }

    fn run_command(&mut self, ctx: &egui::Context, cmd: &str) {
        let mut words = cmd.split_whitespace();
        match (words.next(), words.next()) {
            (Some("quit" | "close"), _) => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
            (Some("play"), _) => self.player.playing = true,
            (Some("pause"), _) => self.player.playing = false,
            (Some("frame"), Some(n)) => match n.parse::<usize>() {
                Ok(n) if n < self.frames.len() => {
                    if !self.player.seek_frame(n) {
                        self.tag = None;
                        self.reselect();
                        self.player.seek_frame(n);
                    }
                }
                _ => self.status = format!("no frame {n}"),
            },
            (Some("export"), _) => self.export(),
            // A tag by its 1-based number (a cinematic's shot): play only its frames.
            (Some("tag"), Some(n)) => match n.parse::<usize>() {
                Ok(k) if (1..=self.tags.len()).contains(&k) => {
                    self.tag = Some(k - 1);
                    self.reselect();
                    let t = &self.tags[k - 1];
                    println!("tag {k}: {}, frames {}-{}", t.name, t.from, t.to);
                }
                _ => self.status = format!("no tag {n}"),
            },
            _ => self.status = format!("unknown command {cmd:?}"),
        }
    }

    fn export(&mut self) {
        let frame = self.player.frame();
        let img = &self.frames[frame];
        let path = self
            .export_dir
            .join(format!("{}-frame{frame:03}.png", self.export_stem));
        let png = encode_png_rgba(&Rgba {
            width: img.width,
            height: img.height,
            data: img.rgba.clone(),
        });
        self.status = match png.map(|bytes| std::fs::write(&path, bytes)) {
            Ok(Ok(())) => {
                println!("exported {}", path.display());
                format!("saved {}", path.display())
            }
            Ok(Err(e)) => format!("cannot write {}: {e}", path.display()),
            Err(e) => format!("cannot encode frame {frame}: {e}"),
        };
    }

    fn wanted(&self) -> Shown {
        let n = self.player.len();
        let pos = self.player.position();
        let mut at = self.player.clone();
        at.seek((pos + n - 1) % n.max(1));
        let prev = at.frame();
        at.seek((pos + 1) % n.max(1));
        let next = at.frame();
        Shown {
            frame: self.player.frame(),
            prev,
            next,
            zoom: self.zoom,
            tile: self.tile,
            onion: self.onion && n > 1,
            linear: self.linear,
            grid: self.grid,
            backdrop: self.backdrop,
        }
    }

    /// Re-composites when what is shown changed, into a texture egui draws directly.
    fn refresh(&mut self, frame: &eframe::Frame) {
        let want = self.wanted();
        if self.shown.as_ref() == Some(&want) {
            return;
        }
        let Some(rs) = frame.wgpu_render_state() else {
            return;
        };
        let view = View {
            zoom: want.zoom,
            tile: want.tile,
            sampling: if want.linear {
                Sampling::Linear
            } else {
                Sampling::Nearest
            },
            backdrop: match want.backdrop {
                BackdropChoice::Checker | BackdropChoice::Image => Backdrop::CHECKER,
                BackdropChoice::Colour(c) => Backdrop::Solid(c),
            },
            grid: want.grid,
            onion: want.onion.then(|| Onion {
                prev: Some(self.frames[want.prev].clone()),
                next: Some(self.frames[want.next].clone()),
                opacity: 0.35,
            }),
            backdrop_image: (want.backdrop == BackdropChoice::Image)
                .then(|| self.backdrop_image.clone())
                .flatten(),
        };
        match self
            .renderer
            .render_texture(&self.frames[want.frame], &view)
        {
            Ok(tex) => {
                let tv = tex.create_view(&wgpu::TextureViewDescriptor {
                    format: Some(SRGB_VIEW),
                    ..Default::default()
                });
                let size = [tex.width(), tex.height()];
                let mut r = rs.renderer.write();
                let id = match self.texture {
                    Some((id, _)) => {
                        r.update_egui_texture_from_wgpu_texture(
                            &rs.device,
                            &tv,
                            wgpu::FilterMode::Nearest,
                            id,
                        );
                        id
                    }
                    None => r.register_native_texture(&rs.device, &tv, wgpu::FilterMode::Nearest),
                };
                self.texture = Some((id, size));
            }
            Err(e) => self.status = e.to_string(),
        }
        self.shown = Some(want);
    }

    fn controls(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            let label = if self.player.playing { "Pause" } else { "Play" };
            if ui.button(label).clicked() {
                self.player.playing = !self.player.playing;
                self.last_tick = Instant::now();
            }
            if ui.button("<").on_hover_text("Previous frame").clicked() {
                self.player.step(-1);
            }
            if ui.button(">").on_hover_text("Next frame").clicked() {
                self.player.step(1);
            }
            ui.separator();
            ui.add_enabled(
                !self.file_timing,
                egui::DragValue::new(&mut self.fps)
                    .range(1..=120)
                    .suffix(" fps"),
            );
            if self.durations_ms.iter().any(Option::is_some) {
                ui.checkbox(&mut self.file_timing, "file timing");
            }
            let before = self.playback;
            egui::ComboBox::from_id_salt("playback")
                .selected_text(match self.playback {
                    Playback::Loop => "Loop",
                    Playback::PingPong => "Ping-pong",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.playback, Playback::Loop, "Loop");
                    ui.selectable_value(&mut self.playback, Playback::PingPong, "Ping-pong");
                });
            let tag_before = self.tag;
            if !self.tags.is_empty() {
                egui::ComboBox::from_id_salt("tag")
                    .selected_text(
                        self.tag
                            .and_then(|t| self.tags.get(t))
                            .map(|t| t.name.as_str())
                            .unwrap_or("All frames"),
                    )
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.tag, None, "All frames");
                        for (i, t) in self.tags.iter().enumerate() {
                            ui.selectable_value(&mut self.tag, Some(i), &t.name);
                        }
                    });
            }
            if before != self.playback || tag_before != self.tag {
                self.reselect();
            }
        });
        ui.horizontal_wrapped(|ui| {
            ui.add(egui::Slider::new(&mut self.zoom, 1..=16).text("zoom"));
            ui.checkbox(&mut self.onion, "onion skin");
            ui.checkbox(&mut self.tile, "tile 3×3");
            ui.checkbox(&mut self.grid, "grid");
            ui.checkbox(&mut self.linear, "smooth");
            egui::ComboBox::from_id_salt("backdrop")
                .selected_text(match self.backdrop {
                    BackdropChoice::Checker => "Checker",
                    BackdropChoice::Colour(_) => "Colour",
                    BackdropChoice::Image => "Image",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.backdrop, BackdropChoice::Checker, "Checker");
                    if self.backdrop_image.is_some() {
                        ui.selectable_value(&mut self.backdrop, BackdropChoice::Image, "Image");
                    }
                    for (name, c) in [
                        ("Dark", [0x20, 0x24, 0x2c]),
                        ("Light", [0xf0, 0xf0, 0xf0]),
                        ("Green screen", [0x00, 0xb1, 0x40]),
                    ] {
                        ui.selectable_value(&mut self.backdrop, BackdropChoice::Colour(c), name);
                    }
                });
            if let BackdropChoice::Colour(c) = &mut self.backdrop {
                ui.color_edit_button_srgb(c);
            }
            if ui.button("Export frame").clicked() {
                self.export();
            }
        });
    }
}

impl eframe::App for PreviewApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        while let Ok(cmd) = self.commands.try_recv() {
            self.run_command(ctx, &cmd);
        }
        if self.watch.is_some() {
            self.poll_watch();
            ctx.request_repaint_after(WATCH_EVERY);
        }
        let (space, left, right, quit) = ctx.input(|i| {
            (
                i.key_pressed(egui::Key::Space),
                i.key_pressed(egui::Key::ArrowLeft),
                i.key_pressed(egui::Key::ArrowRight),
                i.key_pressed(egui::Key::Escape) || i.key_pressed(egui::Key::Q),
            )
        });
        if space {
            self.player.playing = !self.player.playing;
        }
        if left {
            self.player.step(-1);
        }
        if right {
            self.player.step(1);
        }
        if quit {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_tick).as_secs_f64() * 1000.0;
        self.last_tick = now;
        let durations = |f: usize| self.duration_ms(f);
        let mut player = self.player.clone();
        player.advance(elapsed, durations);
        self.player = player;
        if self.player.playing {
            let wait = self.player.until_next_ms(|f| self.duration_ms(f));
            ctx.request_repaint_after(Duration::from_secs_f64(wait / 1000.0));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        egui::Panel::top("controls").show(ui, |ui| self.controls(ui));
        egui::Panel::bottom("timeline").show(ui, |ui| {
            ui.horizontal(|ui| {
                let n = self.player.len();
                let mut pos = self.player.position();
                let slider = egui::Slider::new(&mut pos, 0..=n.saturating_sub(1))
                    .show_value(false)
                    .text(format!(
                        "frame {} / {}",
                        self.player.frame() + 1,
                        self.frames.len()
                    ));
                if ui.add_enabled(n > 1, slider).changed() {
                    self.player.playing = false;
                    self.player.seek(pos);
                }
                if !self.status.is_empty() {
                    ui.separator();
                    ui.label(&self.status);
                }
            });
        });
        self.refresh(frame);
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::both().show(ui, |ui| {
                if let Some((id, [w, h])) = self.texture {
                    // One composite pixel to one screen pixel, whatever the display scale.
                    let ppp = ui.ctx().pixels_per_point();
                    let size = egui::vec2(w as f32 / ppp, h as f32 / ppp);
                    ui.add(egui::Image::new(egui::load::SizedTexture::new(id, size)));
                }
            });
        });
        if !self.announced && self.texture.is_some() {
            self.announced = true;
            println!(
                "ready: frame {} of {}, {} tags, {}",
                self.player.frame(),
                self.frames.len(),
                self.tags.len(),
                self.renderer.adapter()
            );
        }
    }
}
