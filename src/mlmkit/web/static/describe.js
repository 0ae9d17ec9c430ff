// The describe form, enhanced: the chosen file is read without leaving the page (so it stays chosen for the
// build), and every field is checked as it is typed, each message shown beside its field. Without this script
// the same form works by plain submits.
(function () {
  "use strict";
  const form = document.getElementById("describe-form");
  if (!form || !window.fetch || !window.FormData) return;
  const base = form.dataset.base;
  const maxBytes = Number(form.dataset.maxBytes);
  const file = document.getElementById("model");
  let sequence = 0;
  let timer = null;

  function messageNode(message) {
    const p = document.createElement("p");
    p.className = message.severity;
    p.dataset.severity = message.severity;
    const label = document.createElement("strong");
    label.textContent = message.severity.charAt(0).toUpperCase() + message.severity.slice(1) + ":";
    p.append(label, " " + message.text);
    return p;
  }

  function showMessages(messages) {
    form.querySelectorAll(".msg").forEach((box) => box.replaceChildren());
    form.querySelectorAll("[aria-invalid]").forEach((input) => input.removeAttribute("aria-invalid"));
    const summary = document.getElementById("summary");
    summary.replaceChildren();
    for (const message of messages) {
      const box = message.field && document.getElementById(message.field + "-msg");
      (box || summary).append(messageNode(message));
      if (message.severity !== "error" || !message.field) continue;
      const target = document.getElementById(message.field);
      const inputs = target && target.matches("input, select, textarea") ? [target]
        : target ? Array.from(target.querySelectorAll("input, select, textarea")) : [];
      inputs.forEach((input) => input.setAttribute("aria-invalid", "true"));
    }
  }

  function textFields() {
    const data = new FormData(form);
    data.delete("model");
    data.delete("sample_item");
    return data;
  }

  async function check() {
    const mine = ++sequence;
    form.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(base + "/check", {method: "POST", body: textFields(),
                                                     headers: {Accept: "application/json"}});
      const body = await response.json();
      if (mine === sequence) showMessages(body.messages);
    } catch (error) {
      if (mine === sequence) showMessages([{field: "", text: "the checks did not answer: " + error, severity: "error"}]);
    } finally {
      if (mine === sequence) form.removeAttribute("aria-busy");
    }
  }

  function keepChosenFile() {
    const again = form.querySelector('[data-region="again"]');
    if (again && file.files.length) again.replaceChildren();
  }

  // Replace the page's regions with those of the server's answer; the file input (and its file) stays.
  async function swap(action, data) {
    const mine = ++sequence;
    form.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(base + "/" + action, {method: "POST", body: data});
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      if (mine !== sequence) return;
      page.querySelectorAll("[data-region]").forEach((fresh) => {
        const region = form.querySelector('[data-region="' + fresh.dataset.region + '"]');
        if (region) region.replaceChildren(...fresh.childNodes);
      });
      const freshBox = page.getElementById("model-msg");
      if (freshBox) document.getElementById("model-msg").replaceChildren(...freshBox.childNodes);
      const freshFile = page.getElementById("model");
      file.toggleAttribute("aria-invalid", Boolean(freshFile && freshFile.hasAttribute("aria-invalid")));
      if (file.hasAttribute("aria-invalid")) file.setAttribute("aria-invalid", "true");
      keepChosenFile();
    } finally {
      if (mine === sequence) form.removeAttribute("aria-busy");
    }
  }

  function read() {
    if (!file.files.length) return;
    if (file.files[0].size > maxBytes) {
      showMessages([{field: "model", severity: "error",
                     text: "the file is larger than this server's limit of " + (maxBytes / 1048576) + " MiB; expected a model file within it"}]);
      return;
    }
    swap("upload", new FormData(form));
  }

  // Fields about one task only (a detector's layout) show while that task is ticked
  function showTaskFields() {
    const tasks = new Set(Array.from(form.querySelectorAll("input[name=tasks]:checked"), (box) => box.value));
    form.querySelectorAll("[data-when-task]").forEach((field) => { field.hidden = !tasks.has(field.dataset.whenTask); });
  }

  form.addEventListener("change", (event) => { if (event.target.name === "tasks") showTaskFields(); });
  file.addEventListener("change", read);
  form.addEventListener("input", (event) => {
    if (event.target === file || event.target.closest("#trial")) return;  // the sample is no part of the spec
    clearTimeout(timer);
    timer = setTimeout(check, 350);
  });
  form.addEventListener("submit", (event) => {
    const button = event.submitter;
    const action = button && button.getAttribute("formaction");
    clearTimeout(timer);  // a check still waiting would drop this answer
    if (action === base + "/upload") {
      event.preventDefault();
      read();
    } else if (action === base + "/try") {
      event.preventDefault();  // the file stays chosen; the picture replaces the trial region
      swap("try", new FormData(form));
    } else if (action === base + "/check") {
      event.preventDefault();
      const data = textFields();
      if (button.name) {
        data.append(button.name, button.value);
        swap("check", data);
      } else {
        check();
      }
    }
  });
})();
