// Client side of the GPU runner protocol (harness/runner/runner.cu documents the wire format).
// One runner process serves many requests; requests are answered strictly in order.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

const REQUEST_MAGIC = 0x32524751; // 'QGR2': the request with sign_seed (runner.cu refuses 'QGRQ', version 1)
const RESPONSE_MAGIC = 0x53524751;
const OP_RUN = 1;
const OP_BENCH = 2;
const OP_QUIT = 3;
const OP_DEVICE = 4;

/** How a buffer without data is filled on the device (benchmarks): approximately N(0,1) bf16, bytes, E4M3 scales. */
export type DeviceFill = 'bf16-random' | 'bytes-random' | 'e4m3-random';
const FILL_CODES: Record<DeviceFill, number> = { 'bf16-random': 2, 'bytes-random': 3, 'e4m3-random': 4 };

/** A device buffer of a request: its size and initial contents (neither data nor fill: the poison byte). */
export interface BufferArg {
  size: number;
  data?: Uint8Array;
  fill?: DeviceFill;
}

export interface RunRequest {
  kernel: string;
  rows: number;
  cols: number;
  /** Third dimension: a GEMM's n (its m = rows, k = cols); 0 for other kernels. */
  depth?: number;
  /** qgen_quantize_args.seed: the key of the stochastic rounding draws (NUMERICS §3.2). */
  seed: bigint;
  /**
   * qgen_quantize_args.sign_seed, and the Hadamard kernel's seed: the key of the sign vector (NUMERICS §3.2).
   * 0 when absent (GEMMs, amax, dequantize ignore it).
   */
  signSeed?: bigint;
  /** Byte written into every buffer without data (and the workspace) before the launch. */
  poison: number;
  buffers: BufferArg[];
}

export interface RunResult {
  status: number;
  message: string;
  buffers: Uint8Array[];
}
export interface BenchResult {
  status: number;
  message: string;
  kernelMs: Float32Array;
  copyMs: Float32Array;
}

/** Reads exact byte counts from a stream that delivers chunks. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private length = 0;
  private waiter: (() => void) | null = null;
  private ended = false;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.wake();
  }
  end(): void {
    this.ended = true;
    this.wake();
  }
  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async read(n: number): Promise<Buffer> {
    while (this.length < n) {
      if (this.ended) throw new Error(`gpu runner exited while ${n} bytes were expected`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return Buffer.from(out);
  }
}

export class GpuRunner {
  private readonly proc: ChildProcessByStdio<Writable, Readable, null>;
  private readonly queue = new ByteQueue();
  private chain: Promise<unknown> = Promise.resolve();
  /** Set when the runner (or its wrapper) could not be started. */
  spawnError: Error | null = null;

  /** `wrapper`: a command that runs the binary, e.g. ['compute-sanitizer', '--tool', 'memcheck']. */
  constructor(binary: string, wrapper: string[] = []) {
    const argv = [...wrapper, binary];
    this.proc = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    this.proc.stdout.on('data', (d: Buffer) => this.queue.push(d));
    this.proc.stdout.on('end', () => this.queue.end());
    this.proc.on('error', (e) => {
      this.spawnError = e;
      this.queue.end();
    });
    // A runner that died (a crashing kernel) must fail the pending request, not the harness (EPIPE on stdin).
    this.proc.stdin.on('error', () => this.queue.end());
  }

  /** Serialises calls: the runner answers one request at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async header(): Promise<{ status: number; message: string }> {
    const h = await this.queue.read(12);
    if (h.readUInt32LE(0) !== RESPONSE_MAGIC) throw new Error('gpu runner: bad response magic');
    const status = h.readInt32LE(4);
    const msgLen = h.readUInt32LE(8);
    const message = msgLen ? (await this.queue.read(msgLen)).toString('utf8') : '';
    return { status, message };
  }

  private send(op: number, req: RunRequest, reps: number): void {
    const name = Buffer.from(req.kernel, 'utf8');
    const head = Buffer.alloc(12 + name.length + 8 + 8 + 8 + 8 + 8 + 4 + 4 + 4);
    let o = 0;
    o = head.writeUInt32LE(REQUEST_MAGIC, o);
    o = head.writeUInt32LE(op, o);
    o = head.writeUInt32LE(name.length, o);
    o += name.copy(head, o);
    o = head.writeBigInt64LE(BigInt(req.rows), o);
    o = head.writeBigInt64LE(BigInt(req.cols), o);
    o = head.writeBigInt64LE(BigInt(req.depth ?? 0), o);
    o = head.writeBigUInt64LE(BigInt.asUintN(64, req.seed), o);
    o = head.writeBigUInt64LE(BigInt.asUintN(64, req.signSeed ?? 0n), o);
    o = head.writeUInt32LE(req.poison & 0xff, o);
    o = head.writeUInt32LE(reps, o);
    head.writeUInt32LE(req.buffers.length, o);
    const parts: Buffer[] = [head];
    for (const b of req.buffers) {
      const h = Buffer.alloc(12);
      h.writeBigUInt64LE(BigInt(b.size), 0);
      h.writeUInt32LE(b.data ? 1 : b.fill ? FILL_CODES[b.fill] : 0, 8);
      parts.push(h);
      if (b.data) {
        if (b.data.length !== b.size) throw new Error(`buffer data is ${b.data.length} bytes, size says ${b.size}`);
        parts.push(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
      }
    }
    this.proc.stdin.write(Buffer.concat(parts));
  }

  run(req: RunRequest): Promise<RunResult> {
    return this.serial(async () => {
      this.send(OP_RUN, req, 0);
      const { status, message } = await this.header();
      const buffers: Uint8Array[] = [];
      // -1 (unknown kernel) and -2 (CUDA failure) carry no buffers; a kernel's own status (0 or its error) does.
      if (status !== -1 && status !== -2) {
        for (let i = 0; i < req.buffers.length; i++) {
          const size = Number((await this.queue.read(8)).readBigUInt64LE(0));
          buffers.push(new Uint8Array(await this.queue.read(size)));
        }
      }
      return { status, message, buffers };
    });
  }

  bench(req: RunRequest, reps: number): Promise<BenchResult> {
    return this.serial(async () => {
      this.send(OP_BENCH, req, reps);
      const { status, message } = await this.header();
      if (status !== 0) return { status, message, kernelMs: new Float32Array(), copyMs: new Float32Array() };
      const n = (await this.queue.read(4)).readUInt32LE(0);
      const k = await this.queue.read(4 * n);
      const c = await this.queue.read(4 * n);
      const f = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      return { status, message, kernelMs: f(k), copyMs: f(c) };
    });
  }

  device(): Promise<string> {
    return this.serial(async () => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(REQUEST_MAGIC, 0);
      h.writeUInt32LE(OP_DEVICE, 4);
      this.proc.stdin.write(h);
      return (await this.header()).message;
    });
  }

  async close(): Promise<void> {
    await this.closeWithCode();
  }

  /** Ends a runner that does not answer (a hung kernel): SIGKILL, and every pending request fails. */
  kill(): void {
    this.proc.kill('SIGKILL');
    this.queue.end();
  }

  /** Asks the runner to quit and returns its exit code. */
  async closeWithCode(): Promise<number> {
    await this.chain;
    const h = Buffer.alloc(8);
    h.writeUInt32LE(REQUEST_MAGIC, 0);
    h.writeUInt32LE(OP_QUIT, 4);
    if (this.spawnError) return -1;
    const done = new Promise<number>((resolve) => this.proc.on('close', (code) => resolve(code ?? -1)));
    this.proc.stdin.end(h);
    return done;
  }
}

/** Median of a sample (the benchmarks' statistic). */
export function median(xs: ArrayLike<number>): number {
  const a = Array.from(xs).sort((p, q) => p - q);
  if (!a.length) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}
