// ajv (Draft 2020-12, strict) with ajv-formats, answering one JSON request per line on stdin.
//
// Tailor's tests compare their verdicts with this second implementation. The x-tailor vocabulary is registered
// from its published meta-schema (argv[2]): each keyword with its schema as metaSchema, and the money bounds
// validating as the vocabulary describes them.
//   {"op": "compile", "schema": {...}, "vocabulary": true|false} -> {"ok": true} | {"ok": false, "message": "..."}
//   {"op": "validate", "key": "k", "schema": {...}?, "data": ...}  -> {"valid": bool, "errors": [...]}
"use strict";
const fs = require("fs");
const readline = require("readline");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const vocabulary = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/u;

function scaled(text, scale) {
  // a decimal string as a BigInt of `scale` fractional digits: exact, unlike Number
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
  const digits = BigInt(whole + fraction.padEnd(scale, "0"));
  return negative ? -digits : digits;
}

function compareDecimal(a, b) {
  const scale = Math.max((a.split(".")[1] || "").length, (b.split(".")[1] || "").length);
  const x = scaled(a, scale), y = scaled(b, scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

function boundText(bound) {
  const text = String(bound);
  if (!DECIMAL.test(text)) throw new Error(`money bound ${text} is not a plain decimal`);
  return text;
}

function moneyBound(below) {
  return (bound, data) => !DECIMAL.test(data) || (below ? compareDecimal(data, boundText(bound)) >= 0 : compareDecimal(data, boundText(bound)) <= 0);
}

const VALIDATING = { "x-tailor-minimum": moneyBound(true), "x-tailor-maximum": moneyBound(false) };

function makeAjv(withVocabulary) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  if (withVocabulary) {
    for (const [keyword, metaSchema] of Object.entries(vocabulary.properties)) {
      const definition = { keyword, metaSchema };
      if (VALIDATING[keyword]) Object.assign(definition, { type: "string", schemaType: "number", validate: VALIDATING[keyword] });
      ajv.addKeyword(definition);
    }
  }
  return ajv;
}

const ajvs = { true: makeAjv(true), false: makeAjv(false) };
const validators = new Map();

function answer(request) {
  if (request.op === "compile") {
    try {
      // strict mode refuses unknown keywords at compile time; a fresh instance so $ids never clash
      makeAjv(request.vocabulary !== false).compile(request.schema);
      return { ok: true };
    } catch (error) {
      return { ok: false, message: String(error.message || error) };
    }
  }
  if (request.op === "validate") {
    let validate = validators.get(request.key);
    if (!validate) {
      const { $id, ...schema } = request.schema;  // one compiled validator per key; the $id would clash across packs
      validate = ajvs.true.compile(schema);
      validators.set(request.key, validate);
    }
    const valid = validate(request.data);
    return { valid, errors: valid ? [] : validate.errors.map((e) => `${e.instancePath} ${e.message}`) };
  }
  return { error: `unknown op ${request.op}` };
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let reply;
  try {
    reply = answer(JSON.parse(line));
  } catch (error) {
    reply = { error: String(error.stack || error) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
});
