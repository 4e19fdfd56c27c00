// Everything the page says about outcomes and errors, in words a clinician reads at a glance.
// The service's own sentence (detail) is kept as the second line: it names the exact values.

export const REFUSALS = {
  not_radiograph: {
    title: "Not a radiograph",
    text: "This DICOM file is not a plain radiograph (for example a CT or MR image). Only chest X-rays (CR or DX) are read.",
  },
  not_chest: {
    title: "Not a chest image",
    text: "This radiograph is of another body part. Only chest X-rays are read.",
  },
  lateral_view: {
    title: "Lateral view",
    text: "This is a lateral (side) view. Only frontal chest X-rays (PA or AP) are read.",
  },
  colour_image: {
    title: "Colour picture",
    text: "This is a colour picture. Radiographs are shades of grey, so it looks like a photograph or a coloured screenshot, not a chest X-ray.",
  },
  too_small: {
    title: "Image too small",
    text: "The image has too few pixels to be read reliably. Export the original radiograph at full resolution.",
  },
  bad_aspect: {
    title: "Not shaped like a chest X-ray",
    text: "The image is much wider than tall (or the reverse), unlike a chest radiograph. It may be cropped, a montage or a screenshot.",
  },
  blank_image: {
    title: "Blank image",
    text: "The image is blank or nearly uniform: there is nothing to read.",
  },
  out_of_distribution: {
    title: "Does not look like a chest X-ray",
    text: "This image does not look like the frontal chest radiographs the model was trained on. It may be another kind of picture, another body part, or a radiograph of unusual quality, so the model will not give an answer.",
  },
};

const ERRORS = {
  network: "The service cannot be reached. Check the network connection, then try again.",
  aborted: "The upload was cancelled.",
  unauthorized: "Your session has ended or the credential is no longer valid. Please sign in again.",
  forbidden: "Your role does not allow this.",
  not_found: "This item was not found. It may have been removed, or the link is wrong.",
  not_stored: "This server does not keep radiographs, so only the heatmap can be shown.",
  too_large: "The file is too large for this service.",
  too_many_files: "Too many files at once.",
  rate_limited: "Too many requests in a short time.",
  empty_file: "The file is empty.",
  corrupt_image: "The file could not be decoded: it is damaged or not an image.",
  invalid_input: "The file could not be read as a PNG, JPEG or DICOM image.",
  unsupported_image: "This kind of image is not supported.",
  unsupported_format: "This file type is not supported. Use PNG, JPEG or DICOM.",
  unsupported_transfer_syntax: "This DICOM file is compressed in a way the service cannot decode.",
  unsupported_photometric: "This DICOM file's colour encoding is not supported.",
  no_pixel_data: "This DICOM file contains no image.",
  unreadable_header: "The DICOM header could not be read.",
  model_error: "No model is being served at the moment, so images cannot be analysed. Tell the system administrator.",
  validation_error: "Some of the information sent was not valid.",
  unknown_field: "The request was not understood by the service.",
  conflict: "This conflicts with what already exists.",
  last_admin: "This is the last active administrator. Create another administrator first.",
  account_error: "The account details were not accepted.",
  weak_password: "A password needs at least 12 characters.",
  wrong_password: "The current password is wrong.",
  internal_error: "Something went wrong in the service.",
  rate_limit_unavailable: "The service is temporarily unavailable.",
  method_not_allowed: "This action is not available in this version of the service.",
};

const BY_STATUS = {
  400: "The request was not accepted.",
  401: ERRORS.unauthorized,
  403: ERRORS.forbidden,
  404: ERRORS.not_found,
  413: ERRORS.too_large,
  415: ERRORS.unsupported_format,
  422: ERRORS.validation_error,
  429: ERRORS.rate_limited,
  500: ERRORS.internal_error,
  502: "The service is not responding (bad gateway). Try again shortly.",
  503: "The service is temporarily unavailable. Try again shortly.",
  504: "The service took too long to answer. Try again shortly.",
};

/** {title, text, detail, requestId} for any thrown error; never raw JSON or a stack trace. */
export function describeError(error) {
  if (!error || typeof error !== "object" || !("status" in error)) {
    return { title: "Something went wrong", text: "An unexpected error occurred in this page. Reload and try again.",
             detail: "", requestId: null };
  }
  if (error.code === "rejected") {
    const refusal = REFUSALS[error.reason] || {
      title: "Image refused",
      text: "The service declined to read this image: it does not look like a frontal chest radiograph.",
    };
    return { title: `Not analysed: ${refusal.title.toLowerCase()}`, text: refusal.text,
             detail: error.detail, requestId: error.requestId, refusal: true };
  }
  let text = ERRORS[error.code] || BY_STATUS[error.status] || "The service could not complete this request.";
  if (error.status === 429 && error.retryAfter) {
    text += ` Wait ${error.retryAfter} second${error.retryAfter === 1 ? "" : "s"}, then try again.`;
  }
  if (error.status >= 500) text += " If it happens again, give the reference below to the system administrator.";
  // The service's sentence is meant for people: show it, except where it would only repeat or confuse.
  const detail = error.status >= 500 || error.status === 401 || error.code === "network" ? "" : error.detail;
  return { title: titleFor(error), text, detail, requestId: error.requestId };
}

function titleFor(error) {
  if (error.code === "network") return "No connection";
  if (error.status === 401) return "Signed out";
  if (error.status === 403) return "Not allowed";
  if (error.status === 404) return "Not found";
  if (error.status === 413 || error.code === "too_large") return "File too large";
  if (error.status === 429) return "Please wait";
  if (error.status >= 500) return "Service problem";
  if (["corrupt_image", "invalid_input", "empty_file", "unsupported_format", "unsupported_image",
       "no_pixel_data", "unreadable_header", "unsupported_transfer_syntax", "unsupported_photometric"]
      .includes(error.code)) {
    return "Cannot read this file";
  }
  return "Not done";
}

export function labelWords(label) {
  return label === "pneumonia" ? "Pneumonia" : "No pneumonia detected";
}

export function subtypeWords(subtype) {
  return subtype === "viral" ? "viral pattern" : subtype === "bacterial" ? "bacterial pattern" : "";
}

export function sourceWords(source) {
  return { web: "Web page", api: "API", dicom: "DICOM node", cli: "Command line" }[source] || source;
}

export function roleWords(role) {
  return { admin: "Administrator", clinician: "Clinician", auditor: "Auditor", integration: "Integration" }[role] || role;
}

export const FINDING_WORDS = {
  atypical_input:
    "Unlike the images the model learnt from (chest X-rays of children aged 1–5): treat this result with extra caution.",
  outside_intended_population:
    "Outside the population the model was made for (its card: children aged 1–5, frontal chest X-rays): refer.",
  low_resolution: "Low resolution: the image is smaller than the model's input, so fine detail may be lost.",
  secondary_capture: "Secondary capture: this is a copy (e.g. a screenshot) of a radiograph, not the original.",
  no_modality: "The DICOM file does not say what kind of image it is.",
  no_body_part: "The DICOM file does not say which body part it shows.",
  unusual_view: "The view position is neither PA nor AP.",
};
