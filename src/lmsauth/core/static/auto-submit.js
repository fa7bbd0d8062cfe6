// Posts a form marked data-auto-submit as soon as the page loads (the LTI launch's login
// initiation and its id_token post), as Canvas's pages do with an inline script, which the
// pages' CSP (script-src 'self') does not allow. Without scripts the form's button does it.
document.querySelectorAll("form[data-auto-submit]").forEach((form) => form.submit());
