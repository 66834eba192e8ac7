#!/usr/bin/env node
// Runs .tflite signatures in LiteRT.js (WASM CPU) under Node and prints the outputs as JSON.
//
//   node web/tools/run_tflite.mjs MODEL.tflite SIGNATURE INPUTS.json
//       INPUTS.json: {name: {dtype, shape, data}}; prints {name: {dtype, shape, data}}.
//   node web/tools/run_tflite.mjs --calls CALLS.json      (or "-" for stdin)
//       CALLS.json: [{file, signature, inputs}]; prints {litertjs_version, results: [outputs]}.
//       One process and one compiled model per file for many calls (what the Python tests use).
//   --time N   also time each call: adds `timings` [{load_ms (first load of the file),
//              reload_ms (median of 3 more), first_run_ms, run_ms (median of N runs after N
//              warm-up runs), runs}] (`_timing` in the single-call form) and runtime_load_ms.
//
// Every call runs twice and the two outputs must be identical: a model that keeps state
// between calls (a fused LSTM's variable tensors) would answer differently. Any failure to
// load, compile or run prints "run_tflite: error: ..." on stderr and exits with status 1.

import {readFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import {performance} from 'node:perf_hooks';

import {compileFile, loadLiteRtForNode, runSignature} from './litert_node.mjs';

function usage(message) {
  console.error(`run_tflite: ${message}\nusage: run_tflite.mjs MODEL SIGNATURE INPUTS.json [--time N]\n` +
                `       run_tflite.mjs --calls CALLS.json|- [--time N]`);
  process.exit(2);
}

function parseArgs(argv) {
  const options = {time: 0, positional: []};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--calls') options.calls = argv[++i] ?? usage('--calls needs a file');
    else if (argv[i] === '--time') options.time = Number(argv[++i]);
    else options.positional.push(argv[i]);
  }
  if (!Number.isInteger(options.time) || options.time < 0) usage(`--time must be a count, got ${options.time}`);
  return options;
}

function readJson(path) {
  return JSON.parse(readFileSync(path === '-' ? 0 : path, 'utf8'));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function compileOrExplain(file) {
  try {
    return await compileFile(file);
  } catch (error) {
    throw new Error(`${file} does not load in LiteRT.js: ${error.message ?? error}`);
  }
}

async function timed(action) {
  const start = performance.now();
  const value = await action();
  return [value, performance.now() - start];
}

async function runCalls(calls, time) {
  const models = new Map();
  const results = [], timings = [];
  for (const [index, call] of calls.entries()) {
    const where = `call ${index} (${call.file}, signature ${call.signature})`;
    let entry = models.get(call.file);
    if (!entry) {
      const [model, loadMs] = await timed(() => compileOrExplain(call.file));
      entry = {model, loadMs};
      if (time > 0) {
        // The first load of a process also pays for V8 compiling the runtime's WASM code
        // it has not run yet; later loads of the same file show the model's own cost.
        const reloads = [];
        for (let i = 0; i < 3; i++) {
          const [copy, ms] = await timed(() => compileOrExplain(call.file));
          copy.delete();
          reloads.push(ms);
        }
        entry.reloadMs = median(reloads);
      }
      models.set(call.file, entry);
    }
    let first, second, firstMs;
    try {
      [first, firstMs] = await timed(() => runSignature(entry.model, call.signature, call.inputs));
      second = await runSignature(entry.model, call.signature, call.inputs);
    } catch (error) {
      throw new Error(`${where} does not run in LiteRT.js: ${error.message ?? error}`);
    }
    if (JSON.stringify(first) !== JSON.stringify(second)) {
      throw new Error(`${where}: a repeated call gave different outputs (state survives between calls)`);
    }
    if (time > 0) {
      // Untimed warm-up runs first: V8 tiers hot WASM functions up from its baseline
      // compiler while they run, so the first few dozen calls are slower than the rest.
      for (let i = 0; i < time; i++) await runSignature(entry.model, call.signature, call.inputs);
      const runs = [];
      for (let i = 0; i < time; i++) runs.push((await timed(() => runSignature(entry.model, call.signature, call.inputs)))[1]);
      timings.push({load_ms: entry.loadMs, reload_ms: entry.reloadMs, first_run_ms: firstMs, run_ms: median(runs), runs: time});
    }
    results.push(first);
  }
  for (const {model} of models.values()) model.delete();
  return {results, timings};
}

function litertjsVersion() {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@litertjs/core');
  return JSON.parse(readFileSync(new URL('../package.json', `file://${entry}`), 'utf8')).version;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const [, runtimeMs] = await timed(() => loadLiteRtForNode());
  const extra = options.time ? {runtime_load_ms: runtimeMs} : {};
  if (options.calls) {
    const {results, timings} = await runCalls(readJson(options.calls), options.time);
    process.stdout.write(JSON.stringify({litertjs_version: litertjsVersion(), results, ...(options.time ? {timings} : {}), ...extra}));
  } else {
    if (options.positional.length !== 3) usage('expected MODEL SIGNATURE INPUTS.json');
    const [file, signature, inputsPath] = options.positional;
    const {results, timings} = await runCalls([{file, signature, inputs: readJson(inputsPath)}], options.time);
    process.stdout.write(JSON.stringify(options.time ? {...results[0], _timing: {...timings[0], ...extra}} : results[0]));
  }
  process.stdout.write('\n');
}

main().catch((error) => {
  console.error(`run_tflite: error: ${error.message ?? error}`);
  process.exit(1);
});
