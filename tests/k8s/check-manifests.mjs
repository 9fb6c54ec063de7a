// check-manifests.mjs -- strict offline schema check of Kubernetes manifests: every field of every
// object must exist in the Kubernetes API models (the OpenAPI-generated models of the official
// JavaScript client, @kubernetes/client-node), with the right JSON type. An unknown field -- a
// misspelling such as `readinessProbe.periodSecond` -- is an error, as additionalProperties: false
// would make it; `kubectl apply` would drop it silently (or, with server-side field validation,
// refuse it in the cluster).
// Usage: node check-manifests.mjs MODULES_DIR FILE.yaml... (MODULES_DIR: where npm installed
// tests/k8s/package.json). Exit status 0 when all pass, 1 with one line per error otherwise.
import { readFileSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
if (!modules || files.length === 0) {
  console.error("usage: node check-manifests.mjs MODULES_DIR FILE.yaml...");
  process.exit(2);
}
const YAML = await import(pathToFileURL(join(modules, "yaml", "dist", "index.js")).href);
const MODELS = join(modules, "@kubernetes", "client-node", "dist", "gen", "models");
const errors = [];
const cache = new Map();

async function model(name) {
  if (!cache.has(name)) {
    const file = join(MODELS, `${name}.js`);
    cache.set(name, existsSync(file) ? (await import(pathToFileURL(file).href))[name] : null);
  }
  return cache.get(name);
}

function jsonType(v) {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

// Checks value against a client-node type string: string, number, boolean, Date, IntOrString,
// any, Array<T>, { [key: string]: T; }, or a model name.
async function check(value, type, format, path) {
  const t = jsonType(value);
  const bad = (want) => errors.push(`${path}: ${t} where ${want} is expected`);
  let m;
  if (value === null || type === "any" || type === "object")
    return;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (t !== "array")
      return bad("a list");
    for (let i = 0; i < value.length; i++)
      await check(value[i], m[1], "", `${path}[${i}]`);
  } else if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (t !== "object")
      return bad("a map");
    for (const [k, v] of Object.entries(value))
      await check(v, m[1], "", `${path}.${k}`);
  } else if (type === "string" || type === "Date") {
    if (t !== "string")
      bad("a string");
  } else if (type === "number") {
    if (t !== "number" || (/int/.test(format) && !Number.isInteger(value)))
      bad(/int/.test(format) ? "an integer" : "a number");
  } else if (type === "boolean") {
    if (t !== "boolean")
      bad("true or false");
  } else if (type === "IntOrString") {
    if (t !== "string" && !(t === "number" && Number.isInteger(value)))
      bad("an integer or a string");
  } else {
    const cls = await model(type);
    if (cls === null)
      return;		// a type the client does not model: no check below it
    if (t !== "object")
      return bad(`an object (${type})`);
    const fields = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a]));
    for (const [k, v] of Object.entries(value)) {
      const f = fields.get(k);
      if (f === undefined)
        errors.push(`${path}.${k}: unknown field of ${type}`);
      else
        await check(v, f.type, f.format, `${path}.${k}`);
    }
  }
}

// apps/v1 Deployment -> V1Deployment; autoscaling/v2 HorizontalPodAutoscaler -> V2Horizontal...
function modelName(doc) {
  const version = String(doc.apiVersion ?? "").split("/").pop();
  return version.charAt(0).toUpperCase() + version.slice(1) + String(doc.kind ?? "");
}

for (const file of files) {
  const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"));
  for (const [i, d] of docs.entries()) {
    if (d.errors.length > 0) {
      errors.push(`${file}: YAML: ${d.errors[0].message}`);
      continue;
    }
    const doc = d.toJS();
    if (doc === null)
      continue;
    const where = `${file}${docs.length > 1 ? `#${i}` : ""}`;
    if (doc.kind === "Kustomization") {
      for (const r of doc.resources ?? [])
        if (!existsSync(join(dirname(file), r)))
          errors.push(`${where}: resources: ${r} does not exist`);
      continue;
    }
    const name = modelName(doc);
    if ((await model(name)) === null) {
      errors.push(`${where}: no model for apiVersion ${doc.apiVersion} kind ${doc.kind}`);
      continue;
    }
    const before = errors.length;
    await check(doc, name, "", `${where}:${doc.kind}`);
    console.log(`${where}: ${doc.kind} ${doc.metadata?.name ?? ""}: ` +
      (errors.length === before ? "ok" : `${errors.length - before} error(s)`));
  }
}
for (const e of errors)
  console.error(e);
process.exit(errors.length === 0 ? 0 : 1);
