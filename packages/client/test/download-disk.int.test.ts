/**
 * A download whose file cannot be written whole (a full disk, a file-size limit) fails with the
 * disk's reason and leaves nothing under the final name. The limit is a real one: the download
 * runs in a child process under `ulimit -f 1` (1,024 bytes), where the kernel writes only part
 * of a larger write and refuses the next.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLIENT = fileURLToPath(new URL('../dist/index.js', import.meta.url));
let dir: string;
let server: http.Server;
let baseUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-download-disk-'));
  // 1,500 bytes in one write: the limited process can write 1,024 of them.
  server = http.createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'video/mp4', 'content-length': '1500' });
    response.end(Buffer.alloc(1500, 7));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

/** Runs one download in a child process limited to 1,024-byte files; answers what it printed. */
function limitedDownload(target: string): Promise<string> {
  const script = `
    const { createClient } = await import(${JSON.stringify(CLIENT)});
    const client = createClient({ baseUrl: ${JSON.stringify(baseUrl)}, apiKey: 'k' });
    try {
      const saved = await client.downloadFile('/clip.mp4', ${JSON.stringify(target)});
      console.log('saved ' + saved.bytes);
    } catch (error) {
      console.log(error.name + ': ' + error.message);
    }`;
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', 'ulimit -f 1 && exec "$0" --input-type=module -e "$1"', process.execPath, script], (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

it('fails with the disk error, naming the file, instead of saving a short file as whole', async () => {
  const target = path.join(dir, 'clip.mp4');
  const said = await limitedDownload(target);
  // The part file's name carries a random tag of its own (8 hex digits).
  expect(said.replace(/\.[0-9a-f]{8}\.part:/, '.part:')).toBe(
    `ClipLineFileError: could not write ${target}.part: the file is larger than this process may write (EFBIG)`,
  );
  expect(await readdir(dir)).toEqual([]);
});
