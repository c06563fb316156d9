import { AsyncResource } from 'node:async_hooks';

type Bind = (
  this: AsyncResource,
  fn: (...args: unknown[]) => unknown,
  thisArg?: unknown,
) => unknown;

const RESOURCE = Symbol('natprox.asyncResource');
type BoundFunction = ((...args: unknown[]) => unknown) & { [RESOURCE]: AsyncResource };

const DEP0172 = 'The asyncResource property on bound functions is deprecated';

/**
 * Replaces `AsyncResource.prototype.bind` where Node's own one wraps the accessors of each
 * function it returns in `util.deprecate()` (Node 20). `deprecate()` makes the wrapped
 * function the prototype of its wrapper, and V8 keeps a map per prototype in old space: the
 * bound function and everything it closes over then survive young-generation collections
 * until the next full one. `ClientHttp2Session.request()` binds its new stream that way, so
 * on the proxy — the HTTP/2 client of every tunnel — each scrape's stream, buffers and
 * listeners were promoted: scavenges took 3-7 ms instead of about 1 and full collections
 * came twice as often (bench/README.md, "Latest results").
 *
 * The replacement behaves the same: it runs `fn` in the resource's async scope, keeps
 * `length`, and the deprecated `asyncResource` accessor still warns (DEP0172), once.
 * Returns whether it was installed.
 */
export function installLeanAsyncResourceBind(): boolean {
  const original = AsyncResource.prototype.bind as unknown as Bind;
  if (!original.toString().includes('deprecate(')) return false;
  let warned = false;
  // One getter and setter for all bound functions, the resource kept on the function: an
  // accessor made per call would give each bound function its own map, the same trap.
  const asyncResource: PropertyDescriptor = {
    configurable: true,
    enumerable: true,
    get(this: BoundFunction) {
      warnOnce();
      return this[RESOURCE];
    },
    set(this: BoundFunction, value: AsyncResource) {
      warnOnce();
      this[RESOURCE] = value;
    },
  };
  const warnOnce = (): void => {
    if (warned) return;
    warned = true;
    process.emitWarning(DEP0172, 'DeprecationWarning', 'DEP0172');
  };
  const leanBind: Bind = function (this: AsyncResource, fn, thisArg) {
    if (typeof fn !== 'function') return original.call(this, fn, thisArg); // Node's error
    const bound = boundTo(this, fn, thisArg);
    Object.defineProperty(bound, 'length', {
      configurable: true,
      enumerable: false,
      value: fn.length,
      writable: false,
    });
    bound[RESOURCE] = this;
    Object.defineProperty(bound, 'asyncResource', asyncResource);
    return bound;
  };
  AsyncResource.prototype.bind = leanBind as unknown as typeof AsyncResource.prototype.bind;
  return true;
}

/** `fn` run in `resource`'s async scope, with `thisArg` or else the call's `this`. */
function boundTo(
  resource: AsyncResource,
  fn: (...args: unknown[]) => unknown,
  thisArg: unknown,
): BoundFunction {
  if (thisArg !== undefined) {
    return resource.runInAsyncScope.bind(resource, fn, thisArg) as BoundFunction;
  }
  return function (this: unknown, ...args: unknown[]): unknown {
    return resource.runInAsyncScope(fn, this, ...args);
  } as BoundFunction;
}
