// Compressed MusicXML (.mxl, a zip file) in the browser: the score document named by
// META-INF/container.xml (else the first .xml/.musicxml member outside META-INF), inflated with the
// browser's own DecompressionStream, as readers.musicxml takes it out of the archive. The sizes the zip
// directory declares are summed and checked against MAX_XML_BYTES before anything is inflated, and
// inflating stops as soon as a member passes that limit (a crafted directory may understate sizes).

import { ReadError } from "./grid.js";

export const MAX_XML_BYTES = 32 * 1024 * 1024;
const EOCD = 0x06054b50, CENTRAL = 0x02014b50, LOCAL = 0x04034b50;

// The members of a zip archive: [{name, method, size, offset}] from its central directory.
function members(bytes) {
  const view = new DataView(bytes);
  let end = -1;
  for (let i = bytes.byteLength - 22; i >= Math.max(0, bytes.byteLength - 22 - 65535); i--) {
    if (view.getUint32(i, true) === EOCD) { end = i; break; }
  }
  if (end < 0) throw new ReadError("not a zip archive (no end of central directory)");
  const count = view.getUint16(end + 10, true);
  let p = view.getUint32(end + 16, true);
  const out = [];
  for (let k = 0; k < count; k++) {
    if (p + 46 > bytes.byteLength || view.getUint32(p, true) !== CENTRAL) throw new ReadError("corrupt zip directory");
    const nameLength = view.getUint16(p + 28, true);
    const name = new TextDecoder().decode(new Uint8Array(bytes, p + 46, nameLength));
    out.push({name, method: view.getUint16(p + 10, true), compressed: view.getUint32(p + 20, true),
              size: view.getUint32(p + 24, true), offset: view.getUint32(p + 42, true)});
    p += 46 + nameLength + view.getUint16(p + 30, true) + view.getUint16(p + 32, true);
  }
  return out;
}

async function inflate(bytes, member, budget) {
  const view = new DataView(bytes);
  if (view.getUint32(member.offset, true) !== LOCAL) throw new ReadError(`corrupt zip member ${member.name}`);
  const start = member.offset + 30 + view.getUint16(member.offset + 26, true) + view.getUint16(member.offset + 28, true);
  const data = new Uint8Array(bytes, start, Math.min(member.compressed, bytes.byteLength - start));
  if (member.method === 0) return data.slice(0, budget + 1);
  if (member.method !== 8) throw new ReadError(`zip member ${member.name} uses an unsupported compression method`);
  const reader = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate-raw")).getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    total += value.length;
    if (total > budget) {
      reader.cancel();
      throw new ReadError(`${member.name} decompresses to more than the ${MAX_XML_BYTES}-byte limit`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

// .mxl bytes -> the bytes of its MusicXML document (Uint8Array); throws ReadError.
export async function mxlDocument(bytes) {
  const list = members(bytes);
  if (list.reduce((a, m) => a + m.size, 0) > MAX_XML_BYTES) throw new ReadError(`the .mxl archive, decompressed, holds more than ${MAX_XML_BYTES} bytes`);
  let budget = MAX_XML_BYTES;
  let root = null;
  const container = list.find((m) => m.name === "META-INF/container.xml");
  if (container) {
    const xml = await inflate(bytes, container, budget);
    budget -= xml.length;
    const found = new DOMParser().parseFromString(new TextDecoder().decode(xml), "application/xml").getElementsByTagName("rootfile")[0];
    root = found ? found.getAttribute("full-path") : null;
  }
  const member = list.find((m) => m.name === root)
    || list.find((m) => /\.(xml|musicxml)$/.test(m.name) && !m.name.startsWith("META-INF"));
  if (!member) throw new ReadError("the .mxl archive holds no MusicXML document");
  return inflate(bytes, member, budget);
}
