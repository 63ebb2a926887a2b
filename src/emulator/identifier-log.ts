/**
 * Accepted meter event identifiers and the time each was accepted, kept outside the JS heap:
 * an append-only log of records (u32 byte length, UTF-8 bytes, f64 time) in 1 MB blocks, and an
 * open-addressing index from an identifier to its latest record. A hundred thousand identifiers
 * take a few MB and no garbage collector work; a Map of strings took several times that. Blocks
 * are only ever added, so growing discards nothing. The log's bytes are also its saved form: a
 * save appends what was added since the last.
 *
 * A record never spans two blocks: where the next record does not fit, the rest of the block is
 * skipped (marked with a length of PAD when there is room for one).
 */
import { createHash } from 'node:crypto';

const HEADER = 4;
const TIME = 8;
const EMPTY = -1;
const BLOCK_BITS = 20;
const BLOCK = 1 << BLOCK_BITS;
const PAD = 0xffffffff;
/** Offsets in the index are int32: 2048 blocks. */
const MAX_BYTES = 2 ** 31;
/** Identifiers whose UTF-8 might not fit in a block are kept by digest (Stripe allows 100 characters). */
const MAX_DIRECT_LENGTH = Math.floor((BLOCK - HEADER - TIME) / 3);

export class IdentifierLog {
  private blocks: Buffer[] = [];
  /** Where the next record goes (block index << BLOCK_BITS | offset). */
  private used = 0;
  /** Offsets of each identifier's latest record; EMPTY where free. Its length is a power of two. */
  private index = new Int32Array(1024).fill(EMPTY);
  /** The hash of the identifier in each slot of `index`. */
  private hashes = new Int32Array(1024);
  private distinct = 0;
  /** Hash of the identifier last staged. */
  private stagedHash = 0;
  /** Changes on clear(), so a saver knows its earlier writes no longer apply. */
  generation = 0;

  /** Distinct identifiers. */
  get size(): number {
    return this.distinct;
  }

  /** Bytes of the log so far (its saved length). */
  get byteLength(): number {
    return this.used;
  }

  /** The log's bytes from `start` (a previous byteLength) to its end, as consecutive pieces. */
  bytes(start = 0): Buffer[] {
    const pieces: Buffer[] = [];
    for (let pos = start; pos < this.used; ) {
      const block = pos >>> BLOCK_BITS;
      const end = Math.min(this.used, (block + 1) * BLOCK);
      pieces.push(this.blocks[block].subarray(pos & (BLOCK - 1), end - block * BLOCK));
      pos = end;
    }
    return pieces;
  }

  clear(): void {
    this.blocks = [];
    this.used = 0;
    this.index = new Int32Array(1024).fill(EMPTY);
    this.hashes = new Int32Array(1024);
    this.distinct = 0;
    this.generation++;
  }

  has(identifier: string): boolean {
    return this.get(identifier) !== undefined;
  }

  /** The time of the identifier's latest acceptance, if any. */
  get(identifier: string): number | undefined {
    const at = this.index[this.find(this.stage(identifier), this.stagedHash)];
    return at === EMPTY ? undefined : this.timeAt(at);
  }

  /**
   * Records an acceptance (a later one for the same identifier supersedes the earlier), unless
   * the identifier is known and `replace` says no for its prior time. Returns the prior time.
   */
  set(identifier: string, time: number, replace?: (prior: number) => boolean): number | undefined {
    const len = this.stage(identifier);
    const slot = this.find(len, this.stagedHash);
    const at = this.index[slot];
    const prior = at === EMPTY ? undefined : this.timeAt(at);
    if (prior === undefined || !replace || replace(prior)) this.append(slot, len, time);
    return prior;
  }

  /** Each identifier with the time of its latest acceptance (unordered). */
  *entries(): IterableIterator<[string, number]> {
    for (const at of this.index) {
      if (at === EMPTY) continue;
      const buf = this.blocks[at >>> BLOCK_BITS];
      const off = at & (BLOCK - 1);
      const len = buf.readUInt32LE(off);
      yield [buf.toString('utf8', off + HEADER, off + HEADER + len), buf.readDoubleLE(off + HEADER + len)];
    }
  }

  /**
   * Loads a saved log (all of it, as `bytes()` gave it) into this empty one. Throws on a
   * malformed record; a record cut short at the end (an interrupted save) is dropped.
   */
  load(data: Buffer): void {
    if (this.used !== 0) throw new Error('load needs an empty identifier log');
    while (this.used < data.length) {
      const pos = this.used;
      const room = BLOCK - (pos & (BLOCK - 1));
      if (room < HEADER + TIME || (pos + HEADER <= data.length && data.readUInt32LE(pos) === PAD)) {
        this.used = pos + room;
        continue;
      }
      if (pos + HEADER > data.length) break;
      const len = data.readUInt32LE(pos);
      if (HEADER + len + TIME > room) throw new Error('invalid identifier record');
      const end = pos + HEADER + len + TIME;
      if (end > data.length) break;
      const time = data.readDoubleLE(pos + HEADER + len);
      if (!Number.isFinite(time)) throw new Error('invalid identifier record');
      this.reserve(HEADER + len + TIME);
      const buf = this.blocks[pos >>> BLOCK_BITS];
      data.copy(buf, pos & (BLOCK - 1), pos, end);
      this.stagedHash = hashBytes(buf, (pos & (BLOCK - 1)) + HEADER, len);
      this.append(this.find(len, this.stagedHash), len, time);
    }
  }

  /**
   * Writes the identifier's UTF-8 bytes where the next record goes and hashes them; returns
   * their length. ASCII, the usual case, is copied and hashed in one pass.
   */
  private stage(identifier: string): number {
    if (identifier.length > MAX_DIRECT_LENGTH) identifier = `sha256:${createHash('sha256').update(identifier).digest('hex')}`;
    const n = identifier.length;
    this.reserve(HEADER + n * 3 + TIME);
    const buf = this.blocks[this.used >>> BLOCK_BITS];
    const start = (this.used & (BLOCK - 1)) + HEADER;
    let h = 0x811c9dc5;
    for (let i = 0; i < n; i++) {
      const c = identifier.charCodeAt(i);
      if (c > 0x7f) {
        const len = buf.write(identifier, start, 'utf8');
        this.stagedHash = hashBytes(buf, start, len);
        return len;
      }
      buf[start + i] = c;
      h = Math.imul(h ^ c, 0x01000193);
    }
    this.stagedHash = h | 0;
    return n;
  }

  /** Makes room for `size` bytes at `used` in one block, skipping to a new block if needed. */
  private reserve(size: number): void {
    const room = BLOCK - (this.used & (BLOCK - 1));
    if (this.used >>> BLOCK_BITS < this.blocks.length && size <= room) return;
    if (this.used >>> BLOCK_BITS < this.blocks.length) {
      // The rest of this block is skipped; mark it when a length fits.
      if (room >= HEADER) this.blocks[this.used >>> BLOCK_BITS].writeUInt32LE(PAD, this.used & (BLOCK - 1));
      this.used += room;
    }
    if (this.used + BLOCK > MAX_BYTES) throw new RangeError('identifier log is full');
    this.blocks.push(Buffer.allocUnsafe(BLOCK));
  }

  private timeAt(at: number): number {
    const buf = this.blocks[at >>> BLOCK_BITS];
    const off = at & (BLOCK - 1);
    return buf.readDoubleLE(off + HEADER + buf.readUInt32LE(off));
  }

  /** Completes the staged record at `used` and points `slot` at it. */
  private append(slot: number, len: number, time: number): void {
    const at = this.used;
    const buf = this.blocks[at >>> BLOCK_BITS];
    const off = at & (BLOCK - 1);
    buf.writeUInt32LE(len, off);
    buf.writeDoubleLE(time, off + HEADER + len);
    this.used = at + HEADER + len + TIME;
    if (this.index[slot] === EMPTY) this.distinct++;
    this.index[slot] = at;
    this.hashes[slot] = this.stagedHash;
    if (this.distinct * 2 > this.index.length) this.rehash(this.index.length * 2);
  }

  /** The slot of the staged identifier: where its latest record is, or the free slot it would take. */
  private find(len: number, hash: number): number {
    const mask = this.index.length - 1;
    const staged = this.blocks[this.used >>> BLOCK_BITS];
    const start = (this.used & (BLOCK - 1)) + HEADER;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const at = this.index[slot];
      if (at === EMPTY) return slot;
      if (this.hashes[slot] !== hash) continue;
      const buf = this.blocks[at >>> BLOCK_BITS];
      const off = at & (BLOCK - 1);
      if (buf.readUInt32LE(off) !== len) continue;
      let i = 0;
      while (i < len && buf[off + HEADER + i] === staged[start + i]) i++;
      if (i === len) return slot;
    }
  }

  private rehash(size: number): void {
    const oldIndex = this.index;
    const oldHashes = this.hashes;
    this.index = new Int32Array(size).fill(EMPTY);
    this.hashes = new Int32Array(size);
    const mask = size - 1;
    for (let i = 0; i < oldIndex.length; i++) {
      if (oldIndex[i] === EMPTY) continue;
      let slot = oldHashes[i] & mask;
      while (this.index[slot] !== EMPTY) slot = (slot + 1) & mask;
      this.index[slot] = oldIndex[i];
      this.hashes[slot] = oldHashes[i];
    }
  }
}

/** FNV-1a over `len` bytes of `buf` from `start`. */
function hashBytes(buf: Buffer, start: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = start, end = start + len; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return h | 0;
}
