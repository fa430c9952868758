#!/usr/bin/env node
// Lists functions longer than a limit (default 60 lines) in the apps' and the shared package's
// sources: functions, methods and arrow functions, measured from their first to their last line.
// Usage: node scripts/function-lengths.mjs [--max 60] [--top 10] [paths…]; exits 1 when one is over.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseSync } from '@swc/core';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  if (index === -1) return fallback;
  const [value] = args.splice(index, 2).slice(1);
  return Number(value);
};
const max = option('--max', 60);
const top = option('--top', 10);
const roots = args.length ? args : ['packages/shared/src', ...readdirSync('apps').map((app) => path.join('apps', app, 'src'))];

function* sources(dir) {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) yield* sources(full);
    else if (/\.ts$/.test(name) && !/\.d\.ts$/.test(name)) yield full;
  }
}

const FUNCTION_TYPES = new Set([
  'FunctionDeclaration',
  'FunctionExpression',
  'ArrowFunctionExpression',
  'ClassMethod',
  'PrivateMethod',
  'Constructor',
  'MethodProperty',
  'GetterProperty',
  'SetterProperty',
]);

function lineOf(starts, offset) {
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (starts[mid] <= offset) low = mid;
    else high = mid - 1;
  }
  return low + 1;
}

const found = [];
for (const root of roots) {
  for (const file of sources(root)) {
    const text = readFileSync(file, 'utf8');
    const module = parseSync(text, { syntax: 'typescript', target: 'es2022' });
    // swc spans are byte offsets counted across every parse of the process: rebase on the module's.
    const base = module.span.start;
    const bytes = Buffer.from(text, 'utf8');
    const starts = [0];
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === 10) starts.push(i + 1);
    const visit = (node, name) => {
      if (!node || typeof node !== 'object') return;
      if (Array.isArray(node)) {
        for (const child of node) visit(child, name);
        return;
      }
      const ownName = node.identifier?.value ?? node.key?.value ?? node.id?.value ?? name;
      if (FUNCTION_TYPES.has(node.type) && node.span) {
        const first = lineOf(starts, node.span.start - base);
        const last = lineOf(starts, node.span.end - base - 1);
        found.push({ file, line: first, lines: last - first + 1, name: ownName ?? '(anonymous)' });
      }
      for (const [key, child] of Object.entries(node))
        if (key !== 'span' && child && typeof child === 'object') visit(child, node.type === 'VariableDeclarator' ? (node.id?.value ?? name) : ownName);
    };
    visit(module.body, undefined);
  }
}
found.sort((a, b) => b.lines - a.lines);
const over = found.filter((fn) => fn.lines > max);
for (const fn of found.slice(0, Math.max(top, over.length))) console.log(`${String(fn.lines).padStart(4)}  ${fn.file}:${fn.line}  ${fn.name}`);
console.log(`${found.length} functions; ${over.length} over ${max} lines; longest ${found[0]?.lines ?? 0}`);
process.exit(over.length ? 1 : 0);
