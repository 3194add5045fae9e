// Renders a Tailor form with a third-party renderer, as an integrator would: react-jsonschema-form (its ajv8
// validator on Draft 2020-12) or JSON Forms (vanilla renderers), each given Tailor's published JSON Schema and
// the UI schema Tailor compiled for it. Bundled by esbuild in the test setup (tests/web/test_renderers.py).
//
// window.tailorRender(dialect, schema, uiSchema, vocabulary) -> Promise, once the form is on the page
// window.tailorDescribe() -> [{name, tag, type, label, section, options}] for each field, in page order
import React from "react";
import { createRoot } from "react-dom/client";
import { flushSync } from "react-dom";
import Form from "@rjsf/core";
import { getUiOptions } from "@rjsf/utils";
import { customizeValidator } from "@rjsf/validator-ajv8";
import { JsonForms } from "@jsonforms/react";
import { clearAllIds } from "@jsonforms/core";
import { vanillaCells, vanillaRenderers } from "@jsonforms/vanilla-renderers";
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";

function registerVocabulary(ajv, vocabulary) {
  // the x-tailor keywords as the published meta-schema describes them, so a strict ajv accepts Tailor's schemas
  for (const [keyword, metaSchema] of Object.entries(vocabulary.properties)) {
    if (!ajv.getKeyword(keyword)) ajv.addKeyword({ keyword, metaSchema });
  }
  return ajv;
}

// RJSF has no sections of its own: this ObjectFieldTemplate shows the root's `ui:sections` (Tailor's layout)
// as fieldsets with their titles; any field a section does not list follows, as RJSF would show it.
function SectionsTemplate(props) {
  const { sections } = getUiOptions(props.uiSchema);
  const byName = Object.fromEntries(props.properties.map((p) => [p.name, p]));
  const field = (p) => <div className="tailor-field" data-field={p.name} key={p.name}>{p.content}</div>;
  if (!Array.isArray(sections)) return <div>{props.properties.map(field)}</div>;
  const placed = new Set(sections.flatMap((s) => s.fields));
  return (
    <div>
      {props.title && <h2>{props.title}</h2>}
      {sections.map((s, i) => (
        <fieldset className="tailor-section" key={i}>
          {s.title && <legend>{s.title}</legend>}
          {s.description && <p className="tailor-section-help">{s.description}</p>}
          {s.fields.filter((n) => byName[n]).map((n) => field(byName[n]))}
        </fieldset>
      ))}
      {props.properties.filter((p) => !placed.has(p.name)).map(field)}
    </div>
  );
}

let root = null;
window.tailorErrors = [];

window.tailorRender = function (dialect, schema, uiSchema, vocabulary) {
  if (root) root.unmount();
  document.getElementById("root").innerHTML = "";
  root = createRoot(document.getElementById("root"));
  window.tailorErrors = [];
  if (dialect === "rjsf") {
    const validator = customizeValidator({ AjvClass: Ajv2020 });
    registerVocabulary(validator.ajv, vocabulary);
    flushSync(() => root.render(
      // noHtml5Validate: the schema (through ajv) decides what is invalid, not the browser's required-field bubble.
      // constAsDefaults "skipOneOf": RJSF 6 otherwise takes the first `const` of a labelled choice as its default,
      // so a required choice would start filled in with its first option.
      <Form schema={schema} uiSchema={uiSchema} validator={validator} templates={{ ObjectFieldTemplate: SectionsTemplate }} noHtml5Validate
            experimental_defaultFormStateBehavior={{ constAsDefaults: "skipOneOf" }}
            onSubmit={() => { window.tailorSubmitted = true; }} onError={(errors) => { window.tailorErrors = errors; }} />
    ));
  } else {
    clearAllIds();  // JSON Forms numbers the ids of controls it has seen before; each form starts afresh
    const ajv = registerVocabulary(addFormats(new Ajv2020({ allErrors: true, verbose: true, strict: true })), vocabulary);
    function App() {
      const [data, setData] = React.useState({});
      return <JsonForms schema={schema} uischema={uiSchema} data={data} renderers={vanillaRenderers} cells={vanillaCells} ajv={ajv}
                        onChange={({ data, errors }) => { setData(data); window.tailorErrors = errors; }} />;
    }
    flushSync(() => root.render(<App />));
  }
  return new Promise((resolve) => requestAnimationFrame(() => resolve(true)));
};

function fieldOf(dialect, element) {
  if (dialect === "rjsf") return element.dataset.field;
  const m = /^#\/properties\/(.+)$/.exec(element.id);
  return m && m[1];
}

window.tailorDescribe = function (dialect) {
  const wrappers = dialect === "rjsf" ? document.querySelectorAll(".tailor-field") : document.querySelectorAll("div.control[id]");
  return Array.from(wrappers).map((w) => {
    const control = w.querySelector("textarea, select, input");
    const section = w.closest("fieldset");
    const label = w.querySelector("label");
    return {
      name: fieldOf(dialect, w),
      tag: control ? control.tagName.toLowerCase() : null,
      type: control ? control.type : null,
      id: control ? control.id : null,
      value: control ? control.value : null,
      label: label ? label.textContent.trim() : "",
      section: section && section.querySelector("legend") ? section.querySelector("legend").textContent.trim() : null,
      // the choices a person can pick, by what the select shows (its placeholder, with no value, left out)
      options: control && control.tagName === "SELECT" ? Array.from(control.options).filter((o) => o.value !== "").map((o) => (o.label || o.textContent).trim()) : [],
      error: (w.querySelector(dialect === "rjsf" ? ".error-detail" : ".validation_error") || { textContent: "" }).textContent.trim(),
    };
  });
};
