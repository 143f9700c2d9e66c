// Drops the "name" custom section of a Wasm module in place, leaving every other byte as it is (re-writing
// the module with wasm-opt would re-encode the code and cost about 3 KB gzipped). Usage: node wasm-strip-names.mjs FILE
import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
const wasm = readFileSync(file);
if (wasm.readUInt32BE(0) !== 0x0061736d) throw new Error(`${file}: not a Wasm module`);

function leb(at) {
  let value = 0, shift = 0, byte;
  do {
    byte = wasm[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}

const kept = [wasm.subarray(0, 8)];
let at = 8;
while (at < wasm.length) {
  const start = at;
  const id = wasm[at];
  const [size, body] = leb(at + 1);
  at = body + size;
  if (id === 0) {
    const [nameLength, name] = leb(body);
    if (wasm.toString("latin1", name, name + nameLength) === "name") continue;
  }
  kept.push(wasm.subarray(start, at));
}
if (at !== wasm.length) throw new Error(`${file}: truncated section`);
writeFileSync(file, Buffer.concat(kept));
