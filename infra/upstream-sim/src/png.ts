import { crc32, deflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const checksum = Buffer.alloc(4);
  checksum.writeUInt32BE(crc32(typeAndData) >>> 0);
  return Buffer.concat([length, typeAndData, checksum]);
}

/** Colours of a generated picture: a diagonal blend between two colours with soft bands. */
export interface Palette {
  from: readonly [number, number, number];
  to: readonly [number, number, number];
  bands: number;
}

const SHADES = 1024;

/** The palette's colours along the diagonal, precomputed so each pixel is a table lookup. */
function shadeTable(palette: Palette): Buffer {
  const table = Buffer.alloc(SHADES * 3);
  for (let shade = 0; shade < SHADES; shade++) {
    const along = shade / (SHADES - 1);
    const band = 0.85 + 0.15 * Math.cos(along * Math.PI * 2 * palette.bands);
    for (let channel = 0; channel < 3; channel++) {
      const start = palette.from[channel] ?? 0;
      const end = palette.to[channel] ?? 0;
      table[shade * 3 + channel] = Math.round((start + (end - start) * along) * band);
    }
  }
  return table;
}

/** Encodes an 8-bit RGB PNG of the palette's pattern: a real, decodable image of the asked size. */
export function generatePng(width: number, height: number, palette: Palette): Buffer {
  const table = shadeTable(palette);
  const stride = width * 3 + 1;
  const raw = Buffer.alloc(stride * height);
  const xScale = (SHADES - 1) / 2 / Math.max(1, width - 1);
  const yScale = (SHADES - 1) / 2 / Math.max(1, height - 1);
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    raw[row] = 0; // filter type "None" for every scanline
    const fromRow = y * yScale;
    // Three byte writes a pixel: Buffer#copy's per-call checks cost ten times the copy itself.
    for (let x = 0, at = row + 1; x < width; x++, at += 3) {
      const shade = Math.round(fromRow + x * xScale) * 3;
      raw[at] = table[shade]!;
      raw[at + 1] = table[shade + 1]!;
      raw[at + 2] = table[shade + 2]!;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type RGB
  header[10] = 0; // deflate
  header[11] = 0; // adaptive filtering
  header[12] = 0; // no interlace
  return Buffer.concat([SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(raw, { level: 1 })), chunk('IEND', Buffer.alloc(0))]);
}
