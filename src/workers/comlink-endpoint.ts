/** The control plane's transport: comlink over a worker_threads port. */
import nodeAdapterModule from 'comlink/dist/umd/node-adapter.js';

/**
 * comlink's Node adapter (`nodeEndpoint`). The package has no `exports` map
 * and ships UMD/CommonJS, where the bundle assigns the function to
 * `module.exports` itself. Under NodeNext, TypeScript models that file's
 * `export default` as `module.exports.default`, so the default import is
 * typed as a namespace while at runtime it IS the function; accept both.
 */
const interop: unknown = nodeAdapterModule;
export const nodeEndpoint = (typeof interop === 'function' ? interop : nodeAdapterModule.default) as typeof nodeAdapterModule.default;
