// @ts-check
// The login form: API key and/or user + password, traded for an HttpOnly cookie.
import { ApiFailure, post } from "./api.js";
import { field, h, replace } from "./util.js";

export function renderLogin(root, methods, onDone) {
  const error = h("p", { class: "form-error", role: "alert", id: "login-error" });
  const useKey = methods.includes("api_key");
  const useBasic = methods.includes("basic");
  const key = h("input", { type: "password", name: "api_key", autocomplete: "current-password",
    required: useKey && !useBasic, spellcheck: "false" });
  const user = h("input", { type: "text", name: "username", autocomplete: "username" });
  const password = h("input", { type: "password", name: "password",
    autocomplete: "current-password" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Log in");
  const form = h("form", { class: "card login-card", "aria-labelledby": "login-title",
    novalidate: false },
  h("h1", { id: "login-title" }, "Log in to gowa-py"),
  h("p", { class: "muted" }, "This gateway needs credentials. They are sent once and "
    + "exchanged for a session cookie; they are never stored by the page."),
  useKey ? field("API key", key) : null,
  useKey && useBasic ? h("p", { class: "muted or" }, "or") : null,
  useBasic ? [field("User", user), field("Password", password)] : null,
  error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = key.value
      ? { api_key: key.value }
      : { username: user.value, password: password.value };
    submit.disabled = true;
    try {
      const result = await post("/api/dashboard/login", body);
      key.value = "";
      password.value = "";
      onDone(result.csrf_token);
    } catch (failure) {
      error.textContent = failure instanceof ApiFailure && failure.status === 401
        ? "Wrong credentials." : failure.message;
      (useKey ? key : user).focus();
    } finally {
      submit.disabled = false;
    }
  });
  replace(root, h("div", { class: "login-wrap" }, form));
  (useKey ? key : user).focus();
  return () => {};
}
