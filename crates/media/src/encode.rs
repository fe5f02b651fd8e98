//! Animations and video out through FFmpeg's encoders, one frame at a time ([`VideoWriter`]:
//! frames go to the encoder as they are made, so memory stays flat however long the clip):
//! MP4/H.264 (yuv420p, CRF, `+faststart`; odd sizes padded by one pixel, repeating the edge),
//! WebM/VP9 with alpha (yuva420p), APNG, and looping lossless animated WebP (libwebp_anim), which
//! keeps full alpha and every colour where a GIF has 256 and one-bit transparency.
//!
//! A file appears whole or not at all: it is written beside its name and renamed at the end; an
//! error, or a writer dropped before [`VideoWriter::finish`], removes the partial file.

use std::path::{Path, PathBuf};

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling::{Context as Scaler, Flags};
use ffmpeg_next as ffmpeg;

use crate::MediaError;
use crate::still::Rgba;

fn bad(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// A video or animation container and the encoder Mintframe uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoFormat {
    /// H.264 (libx264) in MP4, yuv420p: no alpha (transparent pixels are composited on black).
    Mp4,
    /// VP9 (libvpx-vp9) in WebM, yuva420p: alpha kept.
    WebM,
    /// Animated PNG: lossless, alpha kept.
    Apng,
    /// Animated WebP (libwebp_anim), lossless, alpha kept.
    WebP,
}

impl VideoFormat {
    /// The FFmpeg encoder, muxer, the pixel format the encoder takes and the file extension.
    fn parts(self) -> (&'static str, &'static str, Pixel, &'static str) {
        match self {
            VideoFormat::Mp4 => ("libx264", "mp4", Pixel::YUV420P, "mp4"),
            VideoFormat::WebM => ("libvpx-vp9", "webm", Pixel::YUVA420P, "webm"),
            VideoFormat::Apng => ("apng", "apng", Pixel::RGBA, "png"),
            VideoFormat::WebP => ("libwebp_anim", "webp", Pixel::BGRA, "webp"),
        }
    }

    /// The encoder this format needs, by FFmpeg's name (what the doctor checks).
    pub fn encoder(self) -> &'static str {
        self.parts().0
    }

    /// The encoder of a soundtrack in this format: AAC in MP4, Opus in WebM; APNG and WebP
    /// carry no sound.
    pub fn audio_encoder(self) -> Option<&'static str> {
        match self {
            VideoFormat::Mp4 => Some("aac"),
            VideoFormat::WebM => Some("libopus"),
            VideoFormat::Apng | VideoFormat::WebP => None,
        }
    }

    /// The default quality: CRF 18 for H.264 (visually lossless), 24 for VP9.
    pub fn default_crf(self) -> Option<u32> {
        match self {
            VideoFormat::Mp4 => Some(18),
            VideoFormat::WebM => Some(24),
            VideoFormat::Apng | VideoFormat::WebP => None,
        }
    }
}

/// The encoder `name` of the linked FFmpeg, or an error that says which is missing and how to
/// get it.
pub(crate) fn find_encoder(name: &str, out: &Path) -> Result<ffmpeg::Codec, MediaError> {
    ffmpeg::init()?;
    ffmpeg::encoder::find_by_name(name).ok_or_else(|| {
        bad(
            out,
            format!(
                "the linked FFmpeg has no {name} encoder (on Debian: apt install libavcodec-extra; `mintframe doctor` lists the encoders Mintframe needs)"
            ),
        )
    })
}

/// Writes equally sized straight-alpha RGBA frames to a video file as they come.
pub struct VideoWriter {
    format: VideoFormat,
    octx: ffmpeg::format::context::Output,
    enc: ffmpeg::encoder::Video,
    scaler: Option<Scaler>,
    /// The frames' size, and the encoded size (even for yuv420p).
    size: (u32, u32),
    coded: (u32, u32),
    time_base: ffmpeg::Rational,
    stream_tb: ffmpeg::Rational,
    next: i64,
    part: PathBuf,
    out: PathBuf,
    done: bool,
    audio: Option<crate::audio::AudioTrack>,
}

impl std::fmt::Debug for VideoWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoWriter")
            .field("format", &self.format)
            .field("size", &self.size)
            .field("frames", &self.next)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

impl VideoWriter {
    /// Opens `out` for `width`×`height` frames at `fps` (1 to 120); `crf` is the quality for
    /// MP4 and WebM (lower is better; the format's default when `None`).
    pub fn create(
        out: &Path,
        format: VideoFormat,
        width: u32,
        height: u32,
        fps: u32,
        crf: Option<u32>,
    ) -> Result<VideoWriter, MediaError> {
        VideoWriter::create_with_audio(out, format, width, height, fps, crf, None)
    }

    /// [`VideoWriter::create`] with a soundtrack: any audio FFmpeg reads, muxed as AAC (MP4)
    /// or Opus (WebM) and cut to the video's length at [`VideoWriter::finish`].
    pub fn create_with_audio(
        out: &Path,
        format: VideoFormat,
        width: u32,
        height: u32,
        fps: u32,
        crf: Option<u32>,
        audio: Option<&Path>,
    ) -> Result<VideoWriter, MediaError> {
        let audio_codec = match (format.audio_encoder(), audio) {
            (_, None) => None,
            (Some(codec), Some(a)) => Some((codec, a)),
            (None, Some(_)) => {
                return Err(bad(
                    out,
                    "APNG and animated WebP carry no sound: write .mp4 or .webm for a clip with audio",
                ));
            }
        };
        if !(1..=120).contains(&fps) {
            return Err(bad(out, format!("{fps} fps: use 1 to 120")));
        }
        if width == 0 || height == 0 {
            return Err(bad(out, "a video needs frames of at least 1×1"));
        }
        let max = if format == VideoFormat::WebP {
            16383
        } else {
            8192
        };
        if width > max || height > max {
            return Err(bad(
                out,
                format!("{width}×{height} is over {max} px a side"),
            ));
        }
        let (name, muxer, pix, ext) = format.parts();
        ffmpeg::init()?;
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
        let codec = find_encoder(name, out)?;
        let even = matches!(format, VideoFormat::Mp4 | VideoFormat::WebM);
        let coded = if even {
            (width.div_ceil(2) * 2, height.div_ceil(2) * 2)
        } else {
            (width, height)
        };
        let part = out.with_extension(format!("{ext}.part"));
        // Any failure from here until the writer exists takes the part file with it.
        let cleanup = PartFile(Some(part.clone()));
        let ff = |what: &'static str| {
            let part = part.clone();
            move |e: ffmpeg::Error| bad(&part, format!("{what}: {e}"))
        };
        let mut octx = ffmpeg::format::output_as(&part, muxer).map_err(ff("cannot create"))?;
        let global = octx
            .format()
            .flags()
            .contains(ffmpeg::format::Flags::GLOBAL_HEADER);
        let time_base = ffmpeg::Rational(1, fps as i32);
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(ff("no video encoder"))?;
        enc.set_width(coded.0);
        enc.set_height(coded.1);
        enc.set_format(pix);
        enc.set_time_base(time_base);
        enc.set_frame_rate(Some(ffmpeg::Rational(fps as i32, 1)));
        if global {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = ffmpeg::Dictionary::new();
        let crf = crf.or(format.default_crf());
        match format {
            VideoFormat::Mp4 => {
                opts.set("crf", &crf.unwrap_or(18).to_string());
                opts.set("preset", "medium");
            }
            VideoFormat::WebM => {
                // Constant quality: CRF with no bitrate target.
                enc.set_bit_rate(0);
                opts.set("crf", &crf.unwrap_or(24).to_string());
                opts.set("row-mt", "1");
                opts.set("deadline", "good");
                opts.set("cpu-used", "4");
                opts.set("auto-alt-ref", "0");
            }
            VideoFormat::WebP => opts.set("lossless", "1"),
            VideoFormat::Apng => {}
        }
        let enc = enc
            .open_with(opts)
            .map_err(|e| bad(&part, format!("cannot open {name}: {e}")))?;
        {
            let mut ost = octx.add_stream(codec).map_err(ff("cannot add a stream"))?;
            ost.set_parameters(&enc);
            ost.set_time_base(time_base);
        }
        let mut audio = match audio_codec {
            Some((codec, source)) => Some(crate::audio::AudioTrack::add(
                &mut octx, codec, source, &part,
            )?),
            None => None,
        };
        let mut mux = ffmpeg::Dictionary::new();
        match format {
            // The moov atom first, so a player starts before the whole file is there.
            VideoFormat::Mp4 => mux.set("movflags", "+faststart"),
            // Loop forever.
            VideoFormat::WebP => mux.set("loop", "0"),
            VideoFormat::Apng => mux.set("plays", "0"),
            VideoFormat::WebM => {}
        }
        octx.write_header_with(mux)
            .map_err(ff("cannot write the header"))?;
        let stream_tb = octx.stream(0).map(|s| s.time_base()).unwrap_or(time_base);
        if let Some(a) = audio.as_mut() {
            a.started(&octx);
        }
        let scaler = if matches!(pix, Pixel::RGBA | Pixel::BGRA) {
            None
        } else {
            Some(
                Scaler::get(
                    Pixel::RGBA,
                    coded.0,
                    coded.1,
                    pix,
                    coded.0,
                    coded.1,
                    Flags::BICUBIC | Flags::ACCURATE_RND | Flags::FULL_CHR_H_INT,
                )
                .map_err(ff("cannot convert RGBA"))?,
            )
        };
        cleanup.keep();
        Ok(VideoWriter {
            format,
            octx,
            enc,
            scaler,
            size: (width, height),
            coded,
            time_base,
            stream_tb,
            next: 0,
            part,
            out: out.to_owned(),
            done: false,
            audio,
        })
    }

    /// Encodes the next frame.
    pub fn push(&mut self, frame: &Rgba) -> Result<(), MediaError> {
        let (w, h) = self.size;
        if (frame.width, frame.height) != (w, h) || frame.data.len() != (w * h * 4) as usize {
            return Err(bad(
                &self.out,
                format!(
                    "frame {} is {}×{} but the first is {w}×{h}",
                    self.next, frame.width, frame.height
                ),
            ));
        }
        let (cw, ch) = self.coded;
        let bgra = self.format == VideoFormat::WebP;
        let mut vf =
            ffmpeg::frame::Video::new(if bgra { Pixel::BGRA } else { Pixel::RGBA }, cw, ch);
        let stride = vf.stride(0);
        let plane = vf.data_mut(0);
        for y in 0..ch as usize {
            // Padding rows and columns repeat the edge.
            let sy = y.min(h as usize - 1);
            for x in 0..cw as usize {
                let sx = x.min(w as usize - 1);
                let s = &frame.data[(sy * w as usize + sx) * 4..][..4];
                let px = match self.format {
                    VideoFormat::WebP => [s[2], s[1], s[0], s[3]],
                    // No alpha in H.264: composite on black, as a player shows it.
                    VideoFormat::Mp4 => {
                        let a = u16::from(s[3]);
                        let m = |c: u8| ((u16::from(c) * a + 127) / 255) as u8;
                        [m(s[0]), m(s[1]), m(s[2]), 255]
                    }
                    _ => [s[0], s[1], s[2], s[3]],
                };
                plane[y * stride + x * 4..][..4].copy_from_slice(&px);
            }
        }
        let mut vf = match self.scaler.as_mut() {
            Some(sc) => {
                let mut conv = ffmpeg::frame::Video::empty();
                sc.run(&vf, &mut conv)
                    .map_err(|e| bad(&self.part, format!("cannot convert a frame: {e}")))?;
                conv
            }
            None => vf,
        };
        vf.set_pts(Some(self.next));
        self.next += 1;
        self.enc
            .send_frame(&vf)
            .map_err(|e| bad(&self.part, format!("cannot encode a frame: {e}")))?;
        self.drain()
    }

    fn drain(&mut self) -> Result<(), MediaError> {
        let mut pkt = ffmpeg::Packet::empty();
        while self.enc.receive_packet(&mut pkt).is_ok() {
            pkt.set_stream(0);
            // Every frame lasts one tick; encoders leave it unset and the last frame would
            // then have no length (a clip a frame short in players and in its duration).
            if pkt.duration() == 0 {
                pkt.set_duration(1);
            }
            pkt.rescale_ts(self.time_base, self.stream_tb);
            pkt.write_interleaved(&mut self.octx)
                .map_err(|e| bad(&self.part, format!("cannot write a frame: {e}")))?;
        }
        Ok(())
    }

    /// Flushes the encoder, finishes the file and moves it to its name.
    pub fn finish(mut self) -> Result<(), MediaError> {
        if self.next == 0 {
            return Err(bad(&self.out, "a video needs at least one frame"));
        }
        self.enc
            .send_eof()
            .map_err(|e| bad(&self.part, format!("cannot finish encoding: {e}")))?;
        self.drain()?;
        if let Some(mut track) = self.audio.take() {
            let seconds = self.next as f64 * f64::from(self.time_base.numerator())
                / f64::from(self.time_base.denominator().max(1));
            track.write(&mut self.octx, seconds, &self.part)?;
        }
        self.octx
            .write_trailer()
            .map_err(|e| bad(&self.part, format!("cannot finish the file: {e}")))?;
        std::fs::rename(&self.part, &self.out).map_err(|e| bad(&self.out, e.to_string()))?;
        self.done = true;
        Ok(())
    }
}

/// Removes a part file when dropped, unless kept.
struct PartFile(Option<PathBuf>);

impl PartFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for VideoWriter {
    fn drop(&mut self) {
        if !self.done {
            // Unfinished (an error, a cancel): no half file stays behind.
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// Writes `frames` to `out` in `format` at `fps`, whole or not at all.
pub fn encode_video(
    frames: &[Rgba],
    format: VideoFormat,
    fps: u32,
    crf: Option<u32>,
    out: &Path,
) -> Result<(), MediaError> {
    encode_video_with_audio(frames, format, fps, crf, None, out)
}

/// [`encode_video`] with `audio` muxed in (see [`VideoWriter::create_with_audio`]).
pub fn encode_video_with_audio(
    frames: &[Rgba],
    format: VideoFormat,
    fps: u32,
    crf: Option<u32>,
    audio: Option<&Path>,
    out: &Path,
) -> Result<(), MediaError> {
    let first = frames
        .first()
        .ok_or_else(|| bad(out, "an animation needs at least one frame"))?;
    for (i, f) in frames.iter().enumerate() {
        if (f.width, f.height) != (first.width, first.height) {
            return Err(bad(
                out,
                format!(
                    "frame {i} is {}×{} but the first is {}×{}",
                    f.width, f.height, first.width, first.height
                ),
            ));
        }
    }
    let mut w =
        VideoWriter::create_with_audio(out, format, first.width, first.height, fps, crf, audio)?;
    for f in frames {
        w.push(f)?;
    }
    w.finish()
}

/// Writes equally sized straight-alpha frames to `out` as a looping, lossless animated WebP at
/// `fps` (1 to 60). The file appears whole or not at all (written beside it, then renamed).
pub fn encode_webp(frames: &[Rgba], fps: u32, out: &Path) -> Result<(), MediaError> {
    if !(1..=60).contains(&fps) {
        return Err(bad(out, format!("{fps} fps: use 1 to 60")));
    }
    encode_video(frames, VideoFormat::WebP, fps, None, out)
}

/// What a video file holds, as FFmpeg reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoProbe {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub duration_s: f64,
    /// The video codec's FFmpeg name (`h264`, `vp9`, `apng`, `webp`, `gif`).
    pub codec: String,
    /// Frames, counted by reading the packets.
    pub frames: u64,
    /// Whether frames carry alpha (a pixel format with alpha, or WebM's `alpha_mode`).
    pub alpha: bool,
    /// The audio codec's name, if there is an audio stream.
    pub audio: Option<String>,
}

/// Reads a video's size, rate, duration, codec, frame count, alpha and audio, under the
/// decoder's limits.
pub fn probe_video(path: &Path) -> Result<VideoProbe, MediaError> {
    ffmpeg::init()?;
    ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
    crate::guard::open_regular(path, &crate::guard::Limits::DEFAULT)?;
    let ff = |what: &'static str| move |e: ffmpeg::Error| bad(path, format!("{what} ({e})"));
    let mut input = ffmpeg::format::input(path).map_err(ff("is not a video that can be read"))?;
    let stream = input
        .streams()
        .best(ffmpeg::media::Type::Video)
        .ok_or_else(|| bad(path, "holds no video stream"))?;
    let index = stream.index();
    let expected = stream.frames();
    let rate = stream.avg_frame_rate();
    let fps = if rate.denominator() > 0 {
        f64::from(rate.numerator()) / f64::from(rate.denominator())
    } else {
        0.0
    };
    let alpha_tag = stream
        .metadata()
        .get("alpha_mode")
        .is_some_and(|v| v == "1");
    let ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(ff("has a video stream FFmpeg cannot describe"))?;
    let codec = ctx.id().name().to_owned();
    let video = ctx.decoder().video().map_err(ff("has no video decoder"))?;
    let (width, height) = (video.width(), video.height());
    let alpha = alpha_tag
        || video
            .format()
            .descriptor()
            .is_some_and(|d| d.nb_components() == 4 || d.nb_components() == 2);
    let audio = input
        .streams()
        .best(ffmpeg::media::Type::Audio)
        .map(|a| a.parameters().id().name().to_owned());
    let mut frames = 0;
    for (s, _) in input.packets() {
        if s.index() == index {
            frames += 1;
        }
    }
    if expected > 0 && frames < expected as u64 {
        return Err(bad(
            path,
            format!("is truncated: {frames} of its {expected} frames are there"),
        ));
    }
    let duration_s = if input.duration() > 0 {
        input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    } else if fps > 0.0 {
        frames as f64 / fps
    } else {
        0.0
    };
    Ok(VideoProbe {
        width,
        height,
        fps,
        duration_s,
        codec,
        frames,
        alpha,
        audio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_animated_webp_keeps_every_frame_colour_and_alpha_exactly() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("walk.webp");
        let frame = |px: [u8; 4]| Rgba {
            width: 3,
            height: 2,
            data: px.repeat(6),
        };
        let frames = vec![
            frame([255, 0, 0, 255]),
            frame([0, 128, 255, 77]),
            frame([1, 2, 3, 0]),
        ];
        encode_webp(&frames, 10, &out).expect("encode");
        let file = std::fs::File::open(&out).expect("open");
        let mut dec =
            image_webp::WebPDecoder::new(std::io::BufReader::new(file)).expect("a WebP file");
        assert!(dec.is_animated());
        assert_eq!(dec.num_frames(), 3);
        assert_eq!(dec.dimensions(), (3, 2));
        let mut buf = vec![0; dec.output_buffer_size().expect("size")];
        for (i, f) in frames.iter().enumerate() {
            let ms = dec.read_frame(&mut buf).expect("frame");
            assert_eq!(ms, 100, "frame {i}");
            // Fully transparent pixels keep no colour worth comparing.
            if f.data[3] > 0 {
                assert_eq!(buf, f.data, "frame {i}");
            } else {
                assert!(buf.chunks(4).all(|p| p[3] == 0), "frame {i}");
            }
        }
        assert!(!dir.path().join("walk.webp.part").exists());
    }

    /// A smooth moving pattern, as rendered frames are (noise would not compress like them; and
    /// 4:2:0 keeps colour at half resolution, so colour changing every few pixels loses more
    /// than rendered frames do).
    fn clip(w: u32, h: u32, n: usize) -> Vec<Rgba> {
        (0..n)
            .map(|k| {
                let mut data = Vec::with_capacity((w * h * 4) as usize);
                for y in 0..h {
                    for x in 0..w {
                        let t = k as f64 * 0.3;
                        let r = 128.0 + 100.0 * ((x as f64 * 0.09 + t).sin());
                        let g = 128.0 + 100.0 * ((y as f64 * 0.07 - t).cos());
                        let b = 128.0 + 60.0 * (((x + y) as f64 * 0.05 + t).sin());
                        data.extend([r as u8, g as u8, b as u8, 255]);
                    }
                }
                Rgba {
                    width: w,
                    height: h,
                    data,
                }
            })
            .collect()
    }

    /// PSNR over the RGB of `a`'s area.
    fn psnr(a: &Rgba, b: &Rgba) -> f64 {
        let mut se = 0.0;
        let mut n = 0.0;
        for y in 0..a.height {
            for x in 0..a.width {
                for c in 0..3 {
                    let p = f64::from(a.data[((y * a.width + x) * 4 + c) as usize]);
                    let q = f64::from(b.data[((y * b.width + x) * 4 + c) as usize]);
                    se += (p - q) * (p - q);
                    n += 1.0;
                }
            }
        }
        10.0 * (255.0f64 * 255.0 / (se / n).max(1e-9)).log10()
    }

    #[test]
    fn mp4_at_the_default_quality_round_trips_above_35_db_even_at_an_odd_size() {
        let dir = tempfile::tempdir().expect("tmp");
        for (w, h) in [(64, 48), (63, 47)] {
            let frames = clip(w, h, 24);
            let out = dir.path().join(format!("clip{w}.mp4"));
            encode_video(&frames, VideoFormat::Mp4, 12, None, &out).expect("encode");
            let back = crate::decode_video(&out).expect("decode");
            assert_eq!(back.frames.len(), 24);
            // yuv420p needs even sides: an odd one is padded by one repeated pixel.
            let (cw, ch) = (w.div_ceil(2) * 2, h.div_ceil(2) * 2);
            for (i, (a, b)) in frames.iter().zip(&back.frames).enumerate() {
                assert_eq!((b.width, b.height), (cw, ch));
                let p = psnr(a, b);
                assert!(p >= 35.0, "{w}×{h} frame {i}: {p:.1} dB");
            }
            let probe = probe_video(&out).expect("probe");
            assert_eq!(
                (
                    probe.codec.as_str(),
                    probe.width,
                    probe.height,
                    probe.frames
                ),
                ("h264", cw, ch, 24)
            );
            assert!((probe.fps - 12.0).abs() < 1e-6, "{probe:?}");
            assert!((probe.duration_s - 2.0).abs() < 0.1, "{probe:?}");
            assert!(!probe.alpha && probe.audio.is_none(), "{probe:?}");
        }
    }

    #[test]
    fn webm_keeps_alpha_and_apng_keeps_every_pixel() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut frames = clip(32, 32, 8);
        for f in &mut frames {
            for y in 0..32 {
                for x in 0..16 {
                    f.data[((y * 32 + x) * 4 + 3) as usize] = 0;
                }
            }
        }
        let webm = dir.path().join("sprite.webm");
        encode_video(&frames, VideoFormat::WebM, 10, None, &webm).expect("webm");
        let back = crate::decode_video(&webm).expect("decode");
        assert_eq!(back.frames.len(), 8);
        for f in &back.frames {
            let alpha = |x: u32, y: u32| f.data[((y * 32 + x) * 4 + 3) as usize];
            assert!(
                alpha(4, 10) <= 2,
                "a transparent pixel came back {}",
                alpha(4, 10)
            );
            assert!(
                alpha(28, 10) >= 253,
                "an opaque pixel came back {}",
                alpha(28, 10)
            );
        }
        let probe = probe_video(&webm).expect("probe");
        assert_eq!(probe.codec, "vp9");
        assert!(probe.alpha, "{probe:?}");

        let apng = dir.path().join("sprite.png");
        encode_video(&frames, VideoFormat::Apng, 10, None, &apng).expect("apng");
        let back = crate::decode_video(&apng).expect("decode");
        assert_eq!(back.frames.len(), 8);
        for (a, b) in frames.iter().zip(&back.frames) {
            assert_eq!(a.data, b.data);
        }
        let probe = probe_video(&apng).expect("probe");
        assert_eq!((probe.codec.as_str(), probe.frames), ("apng", 8));
        assert!(probe.alpha);
    }

    #[test]
    fn a_missing_encoder_is_named_with_the_package_that_has_it() {
        let e = match find_encoder("libnot_an_encoder", Path::new("clip.mp4")) {
            Ok(_) => panic!("found an encoder that does not exist"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("has no libnot_an_encoder encoder") && e.contains("libavcodec-extra"),
            "{e}"
        );
        for name in crate::REQUIRED_ENCODERS {
            assert!(find_encoder(name, Path::new("x")).is_ok(), "{name}");
        }
    }

    #[test]
    fn an_unfinished_or_empty_video_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("cut.mp4");
        let frames = clip(16, 16, 3);
        let mut w = VideoWriter::create(&out, VideoFormat::Mp4, 16, 16, 10, None).expect("open");
        w.push(&frames[0]).expect("push");
        let wrong = clip(8, 8, 1);
        let e = w.push(&wrong[0]).expect_err("size");
        assert!(e.to_string().contains("frame 1 is 8×8"), "{e}");
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        let w = VideoWriter::create(&out, VideoFormat::WebM, 16, 16, 10, None).expect("open");
        let e = w.finish().expect_err("empty");
        assert!(e.to_string().contains("at least one frame"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        let e = VideoWriter::create(&out, VideoFormat::Mp4, 16, 16, 0, None)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("0 fps")));
    }

    #[test]
    fn frames_of_different_sizes_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("x.webp");
        let a = Rgba {
            width: 2,
            height: 2,
            data: vec![0; 16],
        };
        let b = Rgba {
            width: 1,
            height: 1,
            data: vec![0; 4],
        };
        let e = encode_webp(&[a, b], 10, &out).expect_err("sizes");
        assert!(e.to_string().contains("frame 1 is 1×1"), "{e}");
        assert!(!out.exists());
    }
}
