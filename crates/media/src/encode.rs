//! Animations out through FFmpeg's encoders: looping, lossless animated WebP (libwebp_anim),
//! which keeps full alpha and every colour where a GIF has 256 and one-bit transparency.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg_next as ffmpeg;

use crate::MediaError;
use crate::still::Rgba;

fn bad(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Writes equally sized straight-alpha frames to `out` as a looping, lossless animated WebP at
/// `fps` (1 to 60). The file appears whole or not at all (written beside it, then renamed).
pub fn encode_webp(frames: &[Rgba], fps: u32, out: &Path) -> Result<(), MediaError> {
    let first = frames
        .first()
        .ok_or_else(|| bad(out, "an animation needs at least one frame"))?;
    if !(1..=60).contains(&fps) {
        return Err(bad(out, format!("{fps} fps: use 1 to 60")));
    }
    let (w, h) = (first.width, first.height);
    if w > 16383 || h > 16383 {
        return Err(bad(out, format!("{w}×{h} is over WebP's 16383 px")));
    }
    for (i, f) in frames.iter().enumerate() {
        if (f.width, f.height) != (w, h) {
            return Err(bad(
                out,
                format!(
                    "frame {i} is {}×{} but the first is {w}×{h}",
                    f.width, f.height
                ),
            ));
        }
    }
    ffmpeg::init()?;
    let codec = ffmpeg::encoder::find_by_name("libwebp_anim")
        .ok_or_else(|| bad(out, "the linked FFmpeg has no libwebp_anim encoder"))?;
    let part = out.with_extension("webp.part");
    let ff = |what: &'static str| {
        let part = part.clone();
        move |e: ffmpeg::Error| bad(&part, format!("{what}: {e}"))
    };
    let result = (|| -> Result<(), MediaError> {
        let mut octx = ffmpeg::format::output_as(&part, "webp").map_err(ff("cannot create"))?;
        let global = octx
            .format()
            .flags()
            .contains(ffmpeg::format::Flags::GLOBAL_HEADER);
        let time_base = ffmpeg::Rational(1, fps as i32);
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(ff("no video encoder"))?;
        enc.set_width(w);
        enc.set_height(h);
        enc.set_format(Pixel::BGRA);
        enc.set_time_base(time_base);
        enc.set_frame_rate(Some(ffmpeg::Rational(fps as i32, 1)));
        if global {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = ffmpeg::Dictionary::new();
        opts.set("lossless", "1");
        let mut enc = enc
            .open_with(opts)
            .map_err(ff("cannot open libwebp_anim"))?;
        {
            let mut ost = octx.add_stream(codec).map_err(ff("cannot add a stream"))?;
            ost.set_parameters(&enc);
            ost.set_time_base(time_base);
        }
        let mut mux = ffmpeg::Dictionary::new();
        // The WebP muxer's `loop`: 0 plays forever.
        mux.set("loop", "0");
        octx.write_header_with(mux)
            .map_err(ff("cannot write the header"))?;
        let ost_tb = octx.stream(0).map(|s| s.time_base()).unwrap_or(time_base);
        let drain = |enc: &mut ffmpeg::encoder::Video,
                     octx: &mut ffmpeg::format::context::Output|
         -> Result<(), MediaError> {
            let mut pkt = ffmpeg::Packet::empty();
            while enc.receive_packet(&mut pkt).is_ok() {
                pkt.set_stream(0);
                pkt.rescale_ts(time_base, ost_tb);
                pkt.write_interleaved(octx)
                    .map_err(ff("cannot write a frame"))?;
            }
            Ok(())
        };
        for (i, f) in frames.iter().enumerate() {
            let mut vf = ffmpeg::frame::Video::new(Pixel::BGRA, w, h);
            let stride = vf.stride(0);
            let plane = vf.data_mut(0);
            for y in 0..h as usize {
                let row = &f.data[y * w as usize * 4..(y + 1) * w as usize * 4];
                let dst = &mut plane[y * stride..y * stride + w as usize * 4];
                for (d, s) in dst.chunks_exact_mut(4).zip(row.chunks_exact(4)) {
                    d.copy_from_slice(&[s[2], s[1], s[0], s[3]]);
                }
            }
            vf.set_pts(Some(i as i64));
            enc.send_frame(&vf).map_err(ff("cannot encode a frame"))?;
            drain(&mut enc, &mut octx)?;
        }
        enc.send_eof().map_err(ff("cannot finish encoding"))?;
        drain(&mut enc, &mut octx)?;
        octx.write_trailer().map_err(ff("cannot finish the file"))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, out).map_err(|e| bad(out, e.to_string()))
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
