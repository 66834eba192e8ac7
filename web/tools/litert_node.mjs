// LiteRT.js (@litertjs/core 2.5.x) under Node 20, on its WASM CPU path.
//
// LiteRT.js is written for browsers. Three of its browser assumptions fail under Node,
// and this module bridges each of them (read from the package's own files:
// node_modules/@litertjs/wasm-utils/dist/index.js and @litertjs/core/dist/index.js):
//
// 1. `self`: the loader (`createWasmLib` in @litertjs/wasm-utils) reads and clears
//    `self.ModuleFactory` / `self.Module`, the globals a classic <script> or a worker's
//    importScripts() leaves behind. Node 20 has no `self`, so it is aliased to globalThis.
// 2. `importScripts`: to run the Emscripten glue script (litert_wasm*_internal.js) the loader
//    calls importScripts(url) when it exists, and otherwise appends a <script> tag to
//    `document.body`, which Node does not have. Our importScripts require()s the glue file
//    instead: it runs the glue file as a CommonJS script. The glue is a UMD script that, as
//    CommonJS, exports its factory through `module.exports` rather than a global, so the
//    shim stores it where the loader looks (`self.ModuleFactory`). A plain require() will
//    not do: @litertjs/core's package.json says "type": "module", so Node would load the
//    glue as an ES module, where its `var ModuleFactory` is module-private and nothing is
//    exported. Hence vm.compileFunction with the CommonJS wrapper's parameters. Run this
//    way the glue sees Node (`process.versions.node`, `require`, `__dirname`) and reads its
//    .wasm file next to it with fs, so neither `fetch` nor a file server is needed.
// 3. Models: `loadAndCompile(url)` fetch()es a URL, and Node's fetch has no file: scheme,
//    so models are read with fs and passed as bytes (a Uint8Array is accepted as is).
//
// 4. Native log: the runtime's C++ log lines (INFO on every load, and the only detailed
//    reason when a model fails, e.g. "Variable tensors not yet supported.", while the JS
//    error says just "Failed to load model from buffer") go to Emscripten's print/printErr,
//    console.log/error by default; a line on stdout would corrupt the JSON our tools print.
//    Emscripten takes `print`/`printErr` from the Module object, which the loader passes
//    from `self.Module`: the shim sets it, keeps the log, and `compileFile`/`runSignature`
//    add its ERROR lines to their errors. LITERTJS_VERBOSE=1 echoes all of it to stderr.
//
// Also: `loadLiteRt` creates a default environment that asks `navigator.gpu` for a WebGPU
// device; Node 20 has no `navigator`, LiteRT.js catches the error and logs a warning, and
// the environment runs on WASM without a GPU. That one expected warning is dropped (any
// other warning is printed) so test logs show only what matters.
//
// Which glue file is loaded is decided by LiteRT.js itself from feature probes: Node 20's
// V8 (11.3) has no relaxed SIMD, so it picks litert_wasm_compat_internal.js (plain SIMD,
// single thread); a newer Node picks litert_wasm_internal.js.

import {readFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {compileFunction} from 'node:vm';

const require = createRequire(import.meta.url);

/** The directory holding LiteRT.js's .js/.wasm runtime files (node_modules/@litertjs/core/wasm). */
export function wasmDirectory() {
  // The package's "exports" are its ESM entry only, so resolve that and walk up from it.
  const entry = require.resolve('@litertjs/core');
  return join(dirname(entry), '..', 'wasm') + '/';
}

const nativeLog = [];

function logNative(line) {
  nativeLog.push(String(line));
  if (nativeLog.length > 200) nativeLog.shift();
  if (process.env.LITERTJS_VERBOSE) process.stderr.write(`${line}\n`);
}

/** The runtime's ERROR lines logged since the last call, then forgotten. */
export function takeNativeErrors() {
  const errors = nativeLog.filter((line) => /^(ERROR|FATAL)\b/.test(line));
  nativeLog.length = 0;
  return errors;
}

function withNativeErrors(error) {
  const errors = takeNativeErrors();
  if (errors.length) error.message = `${error.message ?? error} [LiteRT log: ${errors.join(' | ')}]`;
  return error;
}

function installShim() {
  globalThis.Module = {print: logNative, printErr: logNative};  // (4); the loader clears it
  if (typeof globalThis.self === 'undefined') {
    globalThis.self = globalThis;  // (1)
  }
  if (typeof globalThis.importScripts === 'undefined') {
    globalThis.importScripts = (...urls) => {  // (2)
      for (const url of urls) {
        const path = url.startsWith('file:') ? fileURLToPath(url) : url;
        globalThis.self.ModuleFactory = runCommonJs(path);
      }
    };
  }
}

// Runs a script file as Node's CommonJS loader would and returns its module.exports.
function runCommonJs(path) {
  const wrapper = compileFunction(readFileSync(path, 'utf8'),
                                  ['exports', 'require', 'module', '__filename', '__dirname'],
                                  {filename: path});
  const module = {exports: {}};
  wrapper(module.exports, createRequire(path), module, path, dirname(path));
  return module.exports;
}

let loaded;

/**
 * Loads the LiteRT.js WASM runtime once per process; resolves to the `@litertjs/core` module.
 *
 * Example:
 *   const litert = await loadLiteRtForNode();
 *   const model = await litert.loadAndCompile(readFileSync('model.web.tflite'), {accelerator: 'wasm'});
 */
export function loadLiteRtForNode() {
  loaded ??= (async () => {
    installShim();
    const litert = await import('@litertjs/core');
    const warn = console.warn;
    console.warn = (...args) => {
      if (String(args[0]).startsWith('Failed to create default WebGPU device')) return;
      warn(...args);
    };
    try {
      await litert.loadLiteRt(wasmDirectory());
    } finally {
      console.warn = warn;
    }
    return litert;
  })();
  return loaded;
}

/** Compiles the .tflite file at `path` for the WASM (CPU) accelerator. */
export async function compileFile(path) {
  const litert = await loadLiteRtForNode();
  takeNativeErrors();
  try {
    return await litert.loadAndCompile(new Uint8Array(readFileSync(path)), {accelerator: 'wasm'});
  } catch (error) {
    throw withNativeErrors(error);
  }
}

const ARRAYS = {float32: Float32Array, int32: Int32Array, uint8: Uint8Array};

/**
 * Runs one signature of a compiled model.
 *
 * `inputs` maps input names to {dtype, shape, data} with `data` flat or nested; the result
 * maps output names to {dtype, shape, data} with `data` flat (row-major). Every tensor made
 * here is deleted here: LiteRT.js tensors live in WASM memory and are not garbage collected.
 */
export async function runSignature(model, signature, inputs) {
  const litert = await loadLiteRtForNode();
  const runner = model.signatures[signature];
  if (!runner) {
    throw new Error(`no signature ${JSON.stringify(signature)} in the model; it has ${JSON.stringify(Object.keys(model.signatures))}`);
  }
  const tensors = {};
  try {
    for (const detail of runner.getInputDetails()) {
      const value = inputs[detail.name];
      if (!value) {
        throw new Error(`signature ${signature}: input ${detail.name} missing; given ${JSON.stringify(Object.keys(inputs))}`);
      }
      const Array_ = ARRAYS[value.dtype];
      if (!Array_) {
        throw new Error(`input ${detail.name}: dtype ${value.dtype} is not one LiteRT.js supports (${Object.keys(ARRAYS)})`);
      }
      tensors[detail.name] = new litert.Tensor(Array_.from(flatten(value.data)), value.shape);
    }
    takeNativeErrors();
    let outputs;
    try {
      outputs = await runner.run(tensors);
    } catch (error) {
      throw withNativeErrors(error);
    }
    const result = {};
    for (const [name, tensor] of Object.entries(outputs)) {
      result[name] = {
        dtype: tensor.type.dtype,
        shape: Array.from(tensor.type.layout.dimensions),
        data: Array.from(tensor.toTypedArray()),
      };
      tensor.delete();
    }
    return result;
  } finally {
    for (const tensor of Object.values(tensors)) tensor.delete();
  }
}

function flatten(data) {
  return Array.isArray(data) ? data.flat(Infinity) : [data];
}
