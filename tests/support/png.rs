//! Reading a PNG screenshot's pixels (8-bit RGB or RGBA, not interlaced: what Chromium
//! writes), with flate2, already a dependency of the workspace, for the zlib stream.

use std::collections::HashSet;
use std::io::Read;

/// The number of distinct colours of the PNG image `bytes`.
pub fn distinct_colours(bytes: &[u8]) -> usize {
    let (width, height, channels, data) = pixels(bytes);
    let stride = width * channels;
    let mut colours = HashSet::new();
    for y in 0..height {
        for px in data[y * stride..(y + 1) * stride].chunks(channels) {
            colours.insert(px.to_vec());
        }
    }
    colours.len()
}

/// Width, height, bytes per pixel and the unfiltered rows of the image.
fn pixels(bytes: &[u8]) -> (usize, usize, usize, Vec<u8>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG file");
    let mut at = 8;
    let (mut header, mut idat) = (None, Vec::new());
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let body = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => header = Some(body.to_vec()),
            b"IDAT" => idat.extend_from_slice(body),
            _ => {}
        }
        at += 12 + len;
    }
    let h = header.expect("a PNG has an IHDR chunk");
    let be = |i: usize| u32::from_be_bytes(h[i..i + 4].try_into().unwrap()) as usize;
    let (width, height, depth, colour, interlace) = (be(0), be(4), h[8], h[9], h[12]);
    let channels = match (depth, colour, interlace) {
        (8, 2, 0) => 3,
        (8, 6, 0) => 4,
        other => panic!("PNG of depth, colour type, interlace {other:?}: not read here"),
    };
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .expect("the PNG's image data inflates");
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1), "PNG image data size");
    let mut out = vec![0u8; height * stride];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= channels {
                out[y * stride + x - channels]
            } else {
                0
            };
            let b = if y > 0 { out[(y - 1) * stride + x] } else { 0 };
            let c = if x >= channels && y > 0 {
                out[(y - 1) * stride + x - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => paeth(a, b, c),
                f => panic!("PNG filter type {f}"),
            };
            out[y * stride + x] = line[x].wrapping_add(predicted);
        }
    }
    (width, height, channels, out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = a as i16 + b as i16 - c as i16;
    let (pa, pb, pc) = (
        (p - a as i16).abs(),
        (p - b as i16).abs(),
        (p - c as i16).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}
