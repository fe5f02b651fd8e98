//! Video in, through the FFmpeg libraries: every frame as straight RGBA8.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling::{Context as Scaler, Flags};
use ffmpeg_next as ffmpeg;

use crate::MediaError;
use crate::sequence::Sequence;
use crate::still::Rgba;

fn bad(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Decodes every frame of the best video stream. VP9 goes through libvpx where FFmpeg has it,
/// because FFmpeg's own VP9 decoder drops the alpha plane a WebM with transparency carries.
pub fn decode_video(path: &Path) -> Result<Sequence, MediaError> {
    ffmpeg::init()?;
    // FFmpeg's own chatter ("deprecated pixel format used" for every JPEG) is not the user's
    // business; real failures come back as errors.
    ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
    crate::guard::open_regular(path, &crate::guard::Limits::DEFAULT)?;
    let ff = |what: &'static str| move |e: ffmpeg::Error| bad(path, format!("{what} ({e})"));
    let mut input = ffmpeg::format::input(path)
        .map_err(ff("is not an image, GIF or video that can be read"))?;
    let stream = input
        .streams()
        .best(ffmpeg::media::Type::Video)
        .ok_or_else(|| bad(path, "holds no video stream"))?;
    let index = stream.index();
    let rate = stream.avg_frame_rate();
    let ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(ff("has a video stream FFmpeg cannot describe"))?;
    let libvpx = (ctx.id() == ffmpeg::codec::Id::VP9)
        .then(|| ffmpeg::decoder::find_by_name("libvpx-vp9"))
        .flatten();
    let mut decoder = match libvpx {
        Some(codec) => ctx.decoder().open_as(codec).and_then(|o| o.video()),
        None => ctx.decoder().video(),
    }
    .map_err(ff("has a video codec this FFmpeg cannot decode"))?;
    let limits = crate::guard::Limits::DEFAULT;
    limits.check_frame(path, decoder.width(), decoder.height())?;
    let ms = if rate.numerator() > 0 && rate.denominator() > 0 {
        Some(((1000 * i64::from(rate.denominator())) / i64::from(rate.numerator())).max(1) as u32)
    } else {
        None
    };

    let mut scaler: Option<Scaler> = None;
    let mut frames: Vec<Rgba> = Vec::new();
    let mut take =
        |decoder: &mut ffmpeg::decoder::Video, frames: &mut Vec<Rgba>| -> Result<(), MediaError> {
            let mut decoded = ffmpeg::frame::Video::empty();
            while decoder.receive_frame(&mut decoded).is_ok() {
                let (w, h) = (decoded.width(), decoded.height());
                // A stream may change size mid-way; every frame is held to the limits.
                limits.check_frame(path, w, h)?;
                limits.check_frames(path, frames.len() + 1, w, h)?;
                let stale = scaler.as_ref().is_none_or(|s| {
                    s.input().format != decoded.format()
                        || s.input().width != w
                        || s.input().height != h
                });
                if stale {
                    scaler = Some(
                        Scaler::get(decoded.format(), w, h, Pixel::RGBA, w, h, Flags::BILINEAR)
                            .map_err(ff("cannot convert its pixel format to RGBA"))?,
                    );
                }
                let mut rgba = ffmpeg::frame::Video::empty();
                if let Some(s) = scaler.as_mut() {
                    s.run(&decoded, &mut rgba)
                        .map_err(ff("cannot convert a frame to RGBA"))?;
                }
                let stride = rgba.stride(0);
                let row = (w * 4) as usize;
                let plane = rgba.data(0);
                let mut data = Vec::with_capacity(row * h as usize);
                for y in 0..h as usize {
                    data.extend_from_slice(&plane[y * stride..y * stride + row]);
                }
                frames.push(Rgba {
                    width: w,
                    height: h,
                    data,
                });
            }
            Ok(())
        };
    for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        decoder
            .send_packet(&packet)
            .map_err(ff("has a damaged video packet"))?;
        take(&mut decoder, &mut frames)?;
    }
    decoder
        .send_eof()
        .map_err(ff("could not finish decoding"))?;
    take(&mut decoder, &mut frames)?;
    if frames.is_empty() {
        return Err(bad(path, "decoded to no frames"));
    }
    let n = frames.len();
    Ok(Sequence {
        frames,
        durations_ms: vec![ms; n],
        tags: Vec::new(),
    })
}
