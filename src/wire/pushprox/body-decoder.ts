import { Transform, type TransformCallback } from 'node:stream';
import { NatproxError } from '../../errors.js';

/** How a message body is delimited (RFC 9112 section 6.3). */
export type BodyFraming =
  | { kind: 'length'; bytes: number }
  | { kind: 'chunked' }
  /** Everything up to the end of the carrying stream (the Go client's own error answers). */
  | { kind: 'to-end' };

/** A chunk-size line longer than this is not HTTP. */
const MAX_CHUNK_LINE_BYTES = 1024;
/** Trailers after the last chunk, together. */
const MAX_TRAILER_BYTES = 16 * 1024;

/**
 * Decodes one HTTP/1.1 body as it streams through, with back-pressure: raw bytes in,
 * body bytes out. `complete` tells whether the body's own end was seen (the last chunk,
 * all Content-Length bytes, or a clean end of the carrying stream), so a cut-off body is
 * never taken for a whole one. Bytes after the end of the body are dropped.
 */
export class BodyDecoder extends Transform {
  private remaining: number;
  private state: 'size' | 'data' | 'data-crlf' | 'trailers' | 'done' = 'size';
  private line = '';
  private trailerBytes = 0;
  private ended = false;

  constructor(private readonly framing: BodyFraming) {
    super();
    this.remaining = framing.kind === 'length' ? framing.bytes : 0;
    if (framing.kind === 'length' && framing.bytes === 0) this.state = 'done';
  }

  /** True once the body's own end was seen. */
  get complete(): boolean {
    if (this.framing.kind === 'to-end') return this.ended;
    return this.state === 'done';
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.state === 'done') {
      callback();
      return;
    }
    if (this.framing.kind === 'to-end') {
      callback(null, chunk);
      return;
    }
    if (this.framing.kind === 'length') {
      const take = chunk.subarray(0, this.remaining);
      this.remaining -= take.length;
      if (this.remaining === 0) this.state = 'done';
      callback(null, take);
      return;
    }
    callback(this.decodeChunked(chunk));
  }

  override _flush(callback: TransformCallback): void {
    this.ended = true;
    callback();
  }

  /** Pushes the data of every chunk in `input`; returns an error for malformed framing. */
  private decodeChunked(input: Buffer): Error | null {
    let at = 0;
    while (at < input.length && this.state !== 'done') {
      if (this.state === 'data') {
        const take = input.subarray(at, at + this.remaining);
        this.push(take);
        at += take.length;
        this.remaining -= take.length;
        if (this.remaining === 0) this.state = 'data-crlf';
        continue;
      }
      const newline = input.indexOf(10, at);
      const piece = input.subarray(at, newline < 0 ? input.length : newline);
      at = newline < 0 ? input.length : newline + 1;
      // Checked before the text is made, so an endless line is never held whole.
      if (this.line.length + piece.length > MAX_CHUNK_LINE_BYTES) {
        return new NatproxError(
          'NATPROX_BAD_REQUEST',
          `chunked body: a line is longer than ${MAX_CHUNK_LINE_BYTES} bytes`,
        );
      }
      this.line += piece.toString('latin1');
      if (newline < 0) break;
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      const problem = this.onLine(line);
      if (problem) return problem;
    }
    return null;
  }

  private onLine(line: string): Error | undefined {
    if (this.state === 'data-crlf') {
      if (line !== '')
        return new NatproxError(
          'NATPROX_BAD_REQUEST',
          'chunked body: chunk data not followed by CRLF',
        );
      this.state = 'size';
      return undefined;
    }
    if (this.state === 'trailers') {
      this.trailerBytes += line.length;
      if (this.trailerBytes > MAX_TRAILER_BYTES) {
        return new NatproxError(
          'NATPROX_BAD_REQUEST',
          `chunked body: trailers exceed ${MAX_TRAILER_BYTES} bytes`,
        );
      }
      if (line === '') this.state = 'done';
      return undefined;
    }
    const sizeText = line.split(';')[0]?.trim() ?? '';
    if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) {
      return new NatproxError(
        'NATPROX_BAD_REQUEST',
        `chunked body: bad chunk size "${sizeText.slice(0, 20)}"`,
      );
    }
    const size = parseInt(sizeText, 16);
    if (size === 0) this.state = 'trailers';
    else {
      this.remaining = size;
      this.state = 'data';
    }
    return undefined;
  }
}
