//! Audio for clips: any file FFmpeg reads (WAV, MP3, Ogg, FLAC, the audio of a video) decoded
//! and resampled to 48 kHz float, and an audio track muxed beside a [`crate::VideoWriter`]'s
//! video — AAC in MP4, Opus in WebM — cut to the video's length, as `ffmpeg -shortest` does.

use std::path::{Path, PathBuf};

use ffmpeg::ChannelLayout;
use ffmpeg::format::Sample;
use ffmpeg::format::sample::Type as SampleType;
use ffmpeg::software::resampling::Context as Resampler;
use ffmpeg_next as ffmpeg;

use crate::MediaError;

/// Every track is made at this rate: both AAC and Opus take it.
pub const AUDIO_RATE: u32 = 48_000;

/// The longest audio read: beyond it a clip's soundtrack is cut anyway.
const MAX_SECONDS: f64 = 3600.0;

fn bad(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Decoded audio: `channels` interleaved 32-bit float samples at [`AUDIO_RATE`].
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub channels: u16,
    pub samples: Vec<f32>,
}

impl Audio {
    /// `seconds` of stereo silence.
    pub fn silence(seconds: f64) -> Audio {
        Audio {
            channels: 2,
            samples: vec![0.0; (seconds.max(0.0) * f64::from(AUDIO_RATE)) as usize * 2],
        }
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.channels.max(1)) / f64::from(AUDIO_RATE)
    }

    /// Adds `other` into this stereo track from `at` seconds (a mono one to both sides), as
    /// far as this track lasts.
    pub fn mix_at(&mut self, other: &Audio, at: f64) {
        let start = (at.max(0.0) * f64::from(AUDIO_RATE)) as usize;
        let ch = usize::from(other.channels.max(1));
        for (k, frame) in other.samples.chunks_exact(ch).enumerate() {
            let i = (start + k) * 2;
            if i + 1 >= self.samples.len() {
                break;
            }
            let (l, r) = if ch == 1 {
                (frame[0], frame[0])
            } else {
                (frame[0], frame[1])
            };
            self.samples[i] += l;
            self.samples[i + 1] += r;
        }
    }

    /// A 16-bit PCM WAV of this track (clipped to full scale), the form every muxer input
    /// takes.
    pub fn to_wav(&self) -> Vec<u8> {
        let ch = self.channels.max(1);
        let data_len = (self.samples.len() * 2) as u32;
        let mut b = Vec::with_capacity(44 + self.samples.len() * 2);
        b.extend(b"RIFF");
        b.extend((36 + data_len).to_le_bytes());
        b.extend(b"WAVEfmt ");
        b.extend(16u32.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend(ch.to_le_bytes());
        b.extend(AUDIO_RATE.to_le_bytes());
        b.extend((AUDIO_RATE * u32::from(ch) * 2).to_le_bytes());
        b.extend((ch * 2).to_le_bytes());
        b.extend(16u16.to_le_bytes());
        b.extend(b"data");
        b.extend(data_len.to_le_bytes());
        for s in &self.samples {
            b.extend(((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes());
        }
        b
    }
}

/// The best audio stream of `path`, its channel count (1 or 2 kept; more are mixed to 2).
fn open_audio(
    path: &Path,
) -> Result<
    (
        ffmpeg::format::context::Input,
        usize,
        ffmpeg::decoder::Audio,
    ),
    MediaError,
> {
    ffmpeg::init()?;
    ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
    crate::guard::open_regular(path, &crate::guard::Limits::DEFAULT)?;
    let input = ffmpeg::format::input(path)
        .map_err(|e| bad(path, format!("is not audio FFmpeg can read ({e})")))?;
    let stream = input
        .streams()
        .best(ffmpeg::media::Type::Audio)
        .ok_or_else(|| bad(path, "holds no audio stream"))?;
    let index = stream.index();
    let dec = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .and_then(|c| c.decoder().audio())
        .map_err(|e| bad(path, format!("has audio FFmpeg cannot decode ({e})")))?;
    Ok((input, index, dec))
}

fn layout_for(channels: u16) -> ChannelLayout {
    if channels == 1 {
        ChannelLayout::MONO
    } else {
        ChannelLayout::STEREO
    }
}

/// The channels a track from `path` gets: mono stays mono, anything else becomes stereo.
pub fn track_channels(path: &Path) -> Result<u16, MediaError> {
    let (_, _, dec) = open_audio(path)?;
    Ok(if dec.channels() == 1 { 1 } else { 2 })
}

/// Decodes at most `max_seconds` of `path`'s audio, resampled to [`AUDIO_RATE`] float with
/// mono kept and anything else mixed to stereo.
pub fn decode_audio(path: &Path, max_seconds: f64) -> Result<Audio, MediaError> {
    let (mut input, index, mut dec) = open_audio(path)?;
    let channels: u16 = if dec.channels() == 1 { 1 } else { 2 };
    let out_layout = layout_for(channels);
    let limit = (max_seconds.clamp(0.0, MAX_SECONDS) * f64::from(AUDIO_RATE)) as usize
        * usize::from(channels);
    let mut samples: Vec<f32> = Vec::new();
    let mut resampler: Option<Resampler> = None;
    let ff = |what: &'static str| move |e: ffmpeg::Error| bad(path, format!("{what} ({e})"));
    let take = |frame: &mut ffmpeg::frame::Audio,
                resampler: &mut Option<Resampler>,
                samples: &mut Vec<f32>|
     -> Result<(), MediaError> {
        if frame.channel_layout().is_empty() {
            frame.set_channel_layout(ChannelLayout::default(i32::from(frame.channels())));
        }
        if resampler.is_none() {
            *resampler = Some(
                Resampler::get(
                    frame.format(),
                    frame.channel_layout(),
                    frame.rate(),
                    Sample::F32(SampleType::Packed),
                    out_layout,
                    AUDIO_RATE,
                )
                .map_err(ff("cannot resample the audio"))?,
            );
        }
        let Some(rs) = resampler.as_mut() else {
            return Ok(());
        };
        // Room for the whole frame at the new rate and what the resampler holds back.
        let room = frame.samples() * AUDIO_RATE as usize / frame.rate().max(1) as usize + 512;
        let mut out = ffmpeg::frame::Audio::new(Sample::F32(SampleType::Packed), room, out_layout);
        rs.run(frame, &mut out)
            .map_err(ff("cannot resample the audio"))?;
        push_packed(&out, channels, samples);
        Ok(())
    };
    for (s, packet) in input.packets() {
        if s.index() != index || samples.len() >= limit {
            continue;
        }
        dec.send_packet(&packet)
            .map_err(ff("has audio that does not decode"))?;
        let mut frame = ffmpeg::frame::Audio::empty();
        while dec.receive_frame(&mut frame).is_ok() {
            take(&mut frame, &mut resampler, &mut samples)?;
        }
    }
    let _ = dec.send_eof();
    let mut frame = ffmpeg::frame::Audio::empty();
    while dec.receive_frame(&mut frame).is_ok() {
        take(&mut frame, &mut resampler, &mut samples)?;
    }
    if let Some(rs) = resampler.as_mut() {
        loop {
            let mut out =
                ffmpeg::frame::Audio::new(Sample::F32(SampleType::Packed), 4096, out_layout);
            match rs.flush(&mut out) {
                Ok(_) if out.samples() > 0 => push_packed(&out, channels, &mut samples),
                _ => break,
            }
        }
    }
    samples.truncate(limit);
    if samples.is_empty() {
        return Err(bad(path, "has an audio stream with no samples"));
    }
    Ok(Audio { channels, samples })
}

fn push_packed(frame: &ffmpeg::frame::Audio, channels: u16, out: &mut Vec<f32>) {
    let n = frame.samples() * usize::from(channels);
    let bytes = &frame.data(0)[..n * 4];
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
    );
}

/// An audio stream of a video file being written: its encoder and where it goes.
pub(crate) struct AudioTrack {
    source: PathBuf,
    enc: ffmpeg::encoder::Audio,
    index: usize,
    channels: u16,
    stream_tb: ffmpeg::Rational,
}

impl AudioTrack {
    /// Adds a track for `source` to `octx` (before its header is written): AAC for MP4, Opus
    /// for WebM (`codec`).
    pub(crate) fn add(
        octx: &mut ffmpeg::format::context::Output,
        codec_name: &str,
        source: &Path,
        part: &Path,
    ) -> Result<AudioTrack, MediaError> {
        let channels = track_channels(source)?;
        let codec = crate::encode::find_encoder(codec_name, part)?;
        let global = octx
            .format()
            .flags()
            .contains(ffmpeg::format::Flags::GLOBAL_HEADER);
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| bad(part, format!("no audio encoder: {e}")))?;
        enc.set_rate(AUDIO_RATE as i32);
        enc.set_channel_layout(layout_for(channels));
        enc.set_channels(i32::from(channels));
        enc.set_format(if codec_name == "aac" {
            Sample::F32(SampleType::Planar)
        } else {
            Sample::F32(SampleType::Packed)
        });
        enc.set_bit_rate(if codec_name == "aac" {
            192_000
        } else {
            128_000
        });
        enc.set_time_base(ffmpeg::Rational(1, AUDIO_RATE as i32));
        if global {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let enc = enc
            .open_as(codec)
            .map_err(|e| bad(part, format!("cannot open {codec_name}: {e}")))?;
        let index = {
            let mut ost = octx
                .add_stream(codec)
                .map_err(|e| bad(part, format!("cannot add an audio stream: {e}")))?;
            ost.set_parameters(&enc);
            ost.set_time_base(ffmpeg::Rational(1, AUDIO_RATE as i32));
            ost.index()
        };
        Ok(AudioTrack {
            source: source.to_owned(),
            enc,
            index,
            channels,
            stream_tb: ffmpeg::Rational(1, AUDIO_RATE as i32),
        })
    }

    /// Called once the header is written: the stream's time base as the muxer set it.
    pub(crate) fn started(&mut self, octx: &ffmpeg::format::context::Output) {
        if let Some(s) = octx.stream(self.index) {
            self.stream_tb = s.time_base();
        }
    }

    /// Decodes the source, cuts it to `seconds` and writes it, interleaved with the video.
    pub(crate) fn write(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        seconds: f64,
        part: &Path,
    ) -> Result<(), MediaError> {
        let audio = decode_audio(&self.source, seconds)?;
        let ch = usize::from(self.channels);
        let frame_size = match self.enc.frame_size() {
            0 => 1024,
            n => n as usize,
        };
        let tb = ffmpeg::Rational(1, AUDIO_RATE as i32);
        let planar = self.enc.format().is_planar();
        let ff = |what: &'static str| move |e: ffmpeg::Error| bad(part, format!("{what}: {e}"));
        let mut pts = 0i64;
        for chunk in audio.samples.chunks(frame_size * ch) {
            let n = chunk.len() / ch;
            let mut frame =
                ffmpeg::frame::Audio::new(self.enc.format(), n, layout_for(self.channels));
            frame.set_rate(AUDIO_RATE);
            if planar {
                for c in 0..ch {
                    let plane = frame.data_mut(c);
                    for (i, s) in chunk.iter().skip(c).step_by(ch).enumerate() {
                        plane[i * 4..i * 4 + 4].copy_from_slice(&s.to_ne_bytes());
                    }
                }
            } else {
                let plane = frame.data_mut(0);
                for (i, s) in chunk.iter().enumerate() {
                    plane[i * 4..i * 4 + 4].copy_from_slice(&s.to_ne_bytes());
                }
            }
            frame.set_pts(Some(pts));
            pts += n as i64;
            self.enc
                .send_frame(&frame)
                .map_err(ff("cannot encode the audio"))?;
            self.drain(octx, tb, part)?;
        }
        self.enc.send_eof().map_err(ff("cannot finish the audio"))?;
        self.drain(octx, tb, part)
    }

    fn drain(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        tb: ffmpeg::Rational,
        part: &Path,
    ) -> Result<(), MediaError> {
        let mut pkt = ffmpeg::Packet::empty();
        while self.enc.receive_packet(&mut pkt).is_ok() {
            pkt.set_stream(self.index);
            pkt.rescale_ts(tb, self.stream_tb);
            pkt.write_interleaved(octx)
                .map_err(|e| bad(part, format!("cannot write the audio: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rgba, VideoFormat, encode_video, encode_video_with_audio, probe_video};

    /// A 16-bit PCM WAV of a `hz` sine, `seconds` long, at `rate`, `channels` (the same tone
    /// in each).
    pub(crate) fn sine_wav(path: &Path, hz: f64, seconds: f64, rate: u32, channels: u16) {
        let n = (seconds * f64::from(rate)) as u32;
        let data_len = n * u32::from(channels) * 2;
        let mut b = Vec::new();
        b.extend(b"RIFF");
        b.extend((36 + data_len).to_le_bytes());
        b.extend(b"WAVEfmt ");
        b.extend(16u32.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend(channels.to_le_bytes());
        b.extend(rate.to_le_bytes());
        b.extend((rate * u32::from(channels) * 2).to_le_bytes());
        b.extend((channels * 2).to_le_bytes());
        b.extend(16u16.to_le_bytes());
        b.extend(b"data");
        b.extend(data_len.to_le_bytes());
        for i in 0..n {
            let v = (f64::from(i) / f64::from(rate) * hz * std::f64::consts::TAU).sin();
            let s = (v * 0.5 * f64::from(i16::MAX)) as i16;
            for _ in 0..channels {
                b.extend(s.to_le_bytes());
            }
        }
        std::fs::write(path, b).expect("wav");
    }

    /// The tone's frequency from the rising zero crossings of the first channel, away from the
    /// ends (where encoders fade in and pad).
    fn frequency(a: &Audio) -> f64 {
        let ch = usize::from(a.channels);
        let mono: Vec<f32> = a.samples.iter().step_by(ch).copied().collect();
        let cut = mono.len() / 10;
        let mid = &mono[cut..mono.len() - cut];
        let rising = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        rising as f64 / (mid.len() as f64 / f64::from(AUDIO_RATE))
    }

    fn frames(n: usize) -> Vec<Rgba> {
        (0..n)
            .map(|k| Rgba {
                width: 33,
                height: 17,
                data: [(k * 20) as u8, 90, 200, 255].repeat(33 * 17),
            })
            .collect()
    }

    #[test]
    fn a_soundtrack_survives_muxing_into_mp4_and_webm_cut_to_the_video() {
        let dir = tempfile::tempdir().expect("tmp");
        let wav = dir.path().join("tone.wav");
        // Longer than the 2 s video, at another rate, stereo: resampled and cut.
        sine_wav(&wav, 440.0, 3.5, 44_100, 2);
        let source = decode_audio(&wav, 10.0).expect("decode the source");
        assert_eq!(source.channels, 2);
        assert!(
            (source.seconds() - 3.5).abs() < 0.01,
            "{}",
            source.seconds()
        );
        assert!(
            (frequency(&source) - 440.0).abs() < 2.0,
            "{}",
            frequency(&source)
        );
        for (format, ext, codec) in [
            (VideoFormat::Mp4, "mp4", "aac"),
            (VideoFormat::WebM, "webm", "opus"),
        ] {
            let out = dir.path().join(format!("clip.{ext}"));
            encode_video_with_audio(&frames(16), format, 8, None, Some(&wav), &out)
                .expect("encode");
            let p = probe_video(&out).expect("probe");
            assert_eq!(p.audio.as_deref(), Some(codec), "{p:?}");
            assert_eq!(p.frames, 16, "{p:?}");
            let back = decode_audio(&out, 10.0).expect("decode the track");
            assert_eq!(back.channels, 2);
            assert!(
                (back.seconds() - 2.0).abs() < 0.05,
                "{ext}: {} s of audio for a 2 s video",
                back.seconds()
            );
            let f = frequency(&back);
            assert!(
                (f - 440.0).abs() < 3.0,
                "{ext}: the tone came back at {f} Hz"
            );
            let peak = back.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
            assert!(
                (0.4..0.6).contains(&peak),
                "{ext}: peak {peak}, 0.5 went in"
            );
        }
    }

    #[test]
    fn audio_is_refused_for_apng_and_from_a_file_without_sound_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tmp");
        let wav = dir.path().join("tone.wav");
        sine_wav(&wav, 220.0, 1.0, 48_000, 1);
        let apng = dir.path().join("a.png");
        let e = encode_video_with_audio(&frames(2), VideoFormat::Apng, 8, None, Some(&wav), &apng)
            .expect_err("apng has no sound")
            .to_string();
        assert!(e.contains("carry no sound"), "{e}");
        let silent = dir.path().join("silent.mp4");
        encode_video(&frames(2), VideoFormat::Mp4, 8, None, &silent).expect("silent");
        let out = dir.path().join("b.mp4");
        let e = encode_video_with_audio(&frames(2), VideoFormat::Mp4, 8, None, Some(&silent), &out)
            .expect_err("no audio stream")
            .to_string();
        assert!(e.contains("holds no audio stream"), "{e}");
        let junk = dir.path().join("junk.wav");
        std::fs::write(&junk, b"RIFF0000WAVEnot really").expect("junk");
        assert!(decode_audio(&junk, 1.0).is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !left
                .iter()
                .any(|n| n.starts_with("a.") || n.starts_with("b.")),
            "{left:?}"
        );
        // A mix: a mono line at 0.5 s into 2 s of stereo silence, written and read back.
        let mut bed = Audio::silence(2.0);
        bed.mix_at(&decode_audio(&wav, 5.0).expect("line"), 0.5);
        let mixed = dir.path().join("mix.wav");
        std::fs::write(&mixed, bed.to_wav()).expect("wav");
        let back = decode_audio(&mixed, 5.0).expect("mix back");
        assert_eq!(back.channels, 2);
        assert!((back.seconds() - 2.0).abs() < 0.01);
        let loud = |from: f64, to: f64| {
            back.samples[(from * 96_000.0) as usize..(to * 96_000.0) as usize]
                .iter()
                .fold(0f32, |m, s| m.max(s.abs()))
        };
        assert!(loud(0.0, 0.45) < 0.01, "silent before the line");
        assert!(loud(0.6, 1.4) > 0.4, "the line plays from 0.5 s");
        assert!(loud(1.55, 2.0) < 0.01, "and stops after its 1 s");
        // Mono stays mono.
        let mono = dir.path().join("mono.webm");
        encode_video_with_audio(&frames(8), VideoFormat::WebM, 8, None, Some(&wav), &mono)
            .expect("mono");
        assert_eq!(decode_audio(&mono, 5.0).expect("back").channels, 1);
    }
}
