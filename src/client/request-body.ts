import type { ClientRequest } from 'node:http';
import type { Readable } from 'node:stream';

/**
 * Streams a request body (a POST to remote read) into a local request with back-pressure.
 * The request checks the body against its Content-Length (`strictContentLength`): a body
 * longer or shorter than it says fails the request rather than leaving the rest of it on a
 * keep-alive connection as the start of another request. A failed write or a body that
 * breaks destroys the request, which reports the error as the fetch's.
 */
export function sendRequestBody(request: ClientRequest, body: Readable): void {
  // Node >= 18.10; not in @types/node 20.
  (request as ClientRequest & { strictContentLength: boolean }).strictContentLength = true;
  const fail = (err: Error): void => {
    body.off('data', onData);
    if (!request.destroyed) request.destroy(err);
  };
  const onData = (chunk: Buffer): void => {
    try {
      if (!request.write(chunk)) body.pause();
    } catch (err) {
      fail(err as Error);
    }
  };
  body.on('data', onData);
  body.once('end', () => {
    try {
      request.end();
    } catch (err) {
      fail(err as Error);
    }
  });
  body.once('error', fail);
  request.on('drain', () => body.resume());
}
