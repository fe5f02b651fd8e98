//! The headless compositor: one frame (plus optional onion-skin neighbours) over a backdrop, at
//! integer zoom, optionally tiled 3×3 with a pixel grid, rendered to a texture by
//! `shaders/composite.wgsl` and read back. Thumbnails, contact sheets and the preview window's
//! frames come from here.

use std::borrow::Cow;
use std::sync::mpsc;

use wgpu::util::DeviceExt;

use crate::RenderError;

/// Straight-alpha RGBA8, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Image {
    pub fn new(width: u32, height: u32, rgba: Vec<u8>) -> Result<Image, RenderError> {
        if width == 0 || height == 0 || rgba.len() != (width as usize) * (height as usize) * 4 {
            return Err(RenderError::BadImage(format!(
                "{width}×{height} needs {} RGBA bytes, got {}",
                (width as usize) * (height as usize) * 4,
                rgba.len()
            )));
        }
        Ok(Image {
            width,
            height,
            rgba,
        })
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.width + x) * 4) as usize;
        [
            self.rgba[i],
            self.rgba[i + 1],
            self.rgba[i + 2],
            self.rgba[i + 3],
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Pixel art: every source pixel becomes a zoom×zoom block.
    Nearest,
    Linear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backdrop {
    /// Two colours in cells of `cell` output pixels, as editors show transparency.
    Checker {
        a: [u8; 3],
        b: [u8; 3],
        cell: u32,
    },
    Solid([u8; 3]),
}

impl Backdrop {
    pub const CHECKER: Backdrop = Backdrop::Checker {
        a: [0x66, 0x66, 0x66],
        b: [0x99, 0x99, 0x99],
        cell: 8,
    };
}

/// How to show a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub zoom: u32,
    pub tile: bool,
    pub sampling: Sampling,
    pub backdrop: Backdrop,
    pub grid: bool,
    /// Onion skin: the previous and next frames and their opacities (0..1).
    pub onion: Option<Onion>,
    /// A background image stretched over the whole output; replaces `backdrop` when set.
    pub backdrop_image: Option<Image>,
}

impl Default for View {
    fn default() -> View {
        View {
            zoom: 1,
            tile: false,
            sampling: Sampling::Nearest,
            backdrop: Backdrop::CHECKER,
            grid: false,
            onion: None,
            backdrop_image: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Onion {
    pub prev: Option<Image>,
    pub next: Option<Image>,
    pub opacity: f32,
}

/// The WGSL source of `name` in `shaders/`: read from disk in debug builds (edit and re-run, no
/// rebuild), embedded in release builds.
pub fn shader_source(name: &str) -> Result<Cow<'static, str>, RenderError> {
    let embedded = match name {
        "composite.wgsl" => include_str!("../../../shaders/composite.wgsl"),
        other => return Err(RenderError::Shader(format!("no shader named {other}"))),
    };
    if cfg!(debug_assertions) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shaders")
            .join(name);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(Cow::Owned(text));
        }
    }
    Ok(Cow::Borrowed(embedded))
}

/// A headless wgpu device with the compositor's pipeline.
#[derive(Debug)]
pub struct Renderer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::RenderPipeline,
    nearest: wgpu::Sampler,
    linear: wgpu::Sampler,
    adapter: String,
}

const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;
/// The view format under which [`Renderer::render_texture`]'s output samples as linear colour.
pub const SRGB_VIEW: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;
/// Larger outputs are refused before any GPU allocation (a 3×3 tile of a 2048² sheet at 4×
/// would be 24576² and 2.4 GB).
pub const MAX_OUTPUT_SIDE: u32 = 8192;

impl Renderer {
    /// Opens the preferred adapter (a GPU, or Mesa's lavapipe on a CPU-only machine).
    pub fn new() -> Result<Renderer, RenderError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|e| RenderError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let (device, queue) =
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
                .map_err(|e| RenderError::Device(e.to_string()))?;
        Renderer::with_device(device, queue, format!("{} ({:?})", info.name, info.backend))
    }

    /// The compositor on a device someone else opened (the preview window's), so its output can
    /// be drawn there without a copy through the CPU.
    pub fn with_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter: String,
    ) -> Result<Renderer, RenderError> {
        let source = shader_source("composite.wgsl")?;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("composite.wgsl"),
            source: wgpu::ShaderSource::Wgsl(source),
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("composite"),
            layout: None,
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: FORMAT,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        let sampler = |filter| {
            device.create_sampler(&wgpu::SamplerDescriptor {
                label: None,
                address_mode_u: wgpu::AddressMode::Repeat,
                address_mode_v: wgpu::AddressMode::Repeat,
                mag_filter: filter,
                min_filter: filter,
                ..Default::default()
            })
        };
        let nearest = sampler(wgpu::FilterMode::Nearest);
        let linear = sampler(wgpu::FilterMode::Linear);
        Ok(Renderer {
            device,
            queue,
            pipeline,
            nearest,
            linear,
            adapter,
        })
    }

    /// The adapter this renderer draws on, for logs and benchmarks.
    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    fn upload(&self, img: &Image) -> wgpu::TextureView {
        let size = wgpu::Extent3d {
            width: img.width,
            height: img.height,
            depth_or_array_layers: 1,
        };
        let tex = self.device.create_texture_with_data(
            &self.queue,
            &wgpu::TextureDescriptor {
                label: None,
                size,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: FORMAT,
                usage: wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            },
            wgpu::util::TextureDataOrder::LayerMajor,
            &img.rgba,
        );
        tex.create_view(&wgpu::TextureViewDescriptor::default())
    }

    /// Output size for `frame` under `view`.
    pub fn output_size(frame: &Image, view: &View) -> (u32, u32) {
        let k = view.zoom.max(1) * if view.tile { 3 } else { 1 };
        (
            frame.width.saturating_mul(k),
            frame.height.saturating_mul(k),
        )
    }

    /// Composites `frame` into a new texture on this renderer's device (sampleable, copyable).
    pub fn render_texture(&self, frame: &Image, view: &View) -> Result<wgpu::Texture, RenderError> {
        let (w, h) = Renderer::output_size(frame, view);
        self.composite(frame, view, (w, h), view.zoom as f32)
    }

    /// `frame` shrunk (never enlarged) to fit `max_side`, linearly filtered, over `backdrop`:
    /// the library's thumbnails.
    pub fn thumbnail(
        &self,
        frame: &Image,
        max_side: u32,
        backdrop: Backdrop,
    ) -> Result<Image, RenderError> {
        let longest = frame.width.max(frame.height);
        let scale = (max_side.max(1) as f32 / longest as f32).min(1.0);
        let w = ((frame.width as f32 * scale).round() as u32).max(1);
        let h = ((frame.height as f32 * scale).round() as u32).max(1);
        let view = View {
            zoom: 1,
            sampling: if scale < 1.0 {
                Sampling::Linear
            } else {
                Sampling::Nearest
            },
            backdrop,
            ..View::default()
        };
        let target = self.composite(frame, &view, (w, h), scale)?;
        self.read_back(&target)
    }

    fn composite(
        &self,
        frame: &Image,
        view: &View,
        (w, h): (u32, u32),
        scale: f32,
    ) -> Result<wgpu::Texture, RenderError> {
        if view.zoom == 0 || w > MAX_OUTPUT_SIDE || h > MAX_OUTPUT_SIDE {
            return Err(RenderError::BadImage(format!(
                "a {}×{} frame at zoom {}{} would be {w}×{h}; the limit is {MAX_OUTPUT_SIDE} per side",
                frame.width,
                frame.height,
                view.zoom,
                if view.tile { ", tiled 3×3" } else { "" }
            )));
        }
        for n in view
            .onion
            .iter()
            .flat_map(|o| o.prev.iter().chain(o.next.iter()))
        {
            if (n.width, n.height) != (frame.width, frame.height) {
                return Err(RenderError::BadImage(format!(
                    "onion-skin frame is {}×{} but the frame is {}×{}",
                    n.width, n.height, frame.width, frame.height
                )));
            }
        }
        let frame_view = self.upload(frame);
        let onion = view.onion.as_ref();
        let prev_view = onion.and_then(|o| o.prev.as_ref()).map(|i| self.upload(i));
        let next_view = onion.and_then(|o| o.next.as_ref()).map(|i| self.upload(i));
        let opacity = onion.map(|o| o.opacity.clamp(0.0, 1.0)).unwrap_or(0.0);

        let c = |rgb: [u8; 3]| rgb.map(|v| f32::from(v) / 255.0);
        let (kind, a, b, cell) = match view.backdrop {
            Backdrop::Checker { a, b, cell } => (0.0, c(a), c(b), cell.max(1) as f32),
            Backdrop::Solid(rgb) => (1.0, c(rgb), c(rgb), 1.0),
        };
        let backdrop_view = view.backdrop_image.as_ref().map(|i| self.upload(i));
        let kind = if backdrop_view.is_some() { 2.0 } else { kind };
        let params: [f32; 20] = [
            w as f32,
            h as f32,
            frame.width as f32,
            frame.height as f32,
            scale,
            if view.tile { 1.0 } else { 0.0 },
            kind,
            cell,
            a[0],
            a[1],
            a[2],
            1.0,
            b[0],
            b[1],
            b[2],
            1.0,
            if view.grid { 1.0 } else { 0.0 },
            if prev_view.is_some() { opacity } else { 0.0 },
            if next_view.is_some() { opacity } else { 0.0 },
            0.0,
        ];
        let bytes: Vec<u8> = params.iter().flat_map(|f| f.to_le_bytes()).collect();
        let uniforms = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("composite params"),
                contents: &bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let sampler = match view.sampling {
            Sampling::Nearest => &self.nearest,
            Sampling::Linear => &self.linear,
        };
        let layout = self.pipeline.get_bind_group_layout(0);
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniforms.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&frame_view),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::TextureView(
                        prev_view.as_ref().unwrap_or(&frame_view),
                    ),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::TextureView(
                        next_view.as_ref().unwrap_or(&frame_view),
                    ),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: wgpu::BindingResource::Sampler(sampler),
                },
                wgpu::BindGroupEntry {
                    binding: 5,
                    resource: wgpu::BindingResource::TextureView(
                        backdrop_view.as_ref().unwrap_or(&frame_view),
                    ),
                },
            ],
        });

        let target = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("composite target"),
            size: wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: FORMAT,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT
                | wgpu::TextureUsages::COPY_SRC
                | wgpu::TextureUsages::TEXTURE_BINDING,
            // The composite holds sRGB-encoded bytes; a window samples it through an sRGB view so
            // its colours arrive unchanged.
            view_formats: &[SRGB_VIEW],
        });
        let target_view = target.create_view(&wgpu::TextureViewDescriptor::default());
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("composite"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &target_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                ..Default::default()
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.draw(0..3, 0..1);
        }
        self.queue.submit([encoder.finish()]);
        Ok(target)
    }

    /// Composites `frame` and reads the result back.
    pub fn render(&self, frame: &Image, view: &View) -> Result<Image, RenderError> {
        let target = self.render_texture(frame, view)?;
        self.read_back(&target)
    }

    fn read_back(&self, target: &wgpu::Texture) -> Result<Image, RenderError> {
        let (w, h) = (target.width(), target.height());
        // Rows of a texture-to-buffer copy must be 256-byte aligned.
        let row = w * 4;
        let padded =
            row.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("composite readback"),
            size: u64::from(padded) * u64::from(h),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: target,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded),
                    rows_per_image: Some(h),
                },
            },
            wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
        );
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        readback.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RenderError::Readback(e.to_string()))?;
        rx.recv()
            .map_err(|e| RenderError::Readback(e.to_string()))?
            .map_err(|e| RenderError::Readback(e.to_string()))?;
        let mut rgba = Vec::with_capacity((row * h) as usize);
        {
            let data = readback
                .get_mapped_range(..)
                .map_err(|e| RenderError::Readback(e.to_string()))?;
            for y in 0..h as usize {
                let start = y * padded as usize;
                rgba.extend_from_slice(&data[start..start + row as usize]);
            }
        }
        readback.unmap();
        Image::new(w, h, rgba)
    }
}
