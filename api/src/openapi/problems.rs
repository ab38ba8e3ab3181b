//! The error answers of the document (issue 13): every error the server
//! sends is `application/problem+json` with the [`Problem`](crate::error::Problem)
//! schema, and every operation lists the errors the server's shared layers can
//! answer it with, derived from what the operation declares (a body, path
//! ids, query parameters, an `Idempotency-Key`, security) so a new route gets
//! them without anyone remembering:
//!
//! | status | when | where it comes from |
//! | --- | --- | --- |
//! | 400 | the body is not JSON, or not sent as `application/json` | `extract::JsonCommand` |
//! | 401 | no or bad credentials | `auth` |
//! | 403 | the caller's role may not do this, or a driver asks for what is not its own | `policy` |
//! | 404 | an id in the path that is unknown or another company's | the handlers |
//! | 409 | the same `Idempotency-Key` is still running | `routes::idempotent` |
//! | 413 | the body is over the size limit | `limits` |
//! | 422 | invalid fields, query parameters or `Idempotency-Key` (with `errors[]`) | the extractors and the domain |
//! | 429 | over the rate limit (`Retry-After`) | `limits` |
//! | 503 | the request did not finish within the request timeout | `limits` |
//!
//! An operation's own declaration of one of these keeps its description (it
//! says which case of the operation it is).

use utoipa::openapi::{
    header::HeaderBuilder,
    path::{Operation, ParameterIn},
    response::{Response, ResponseBuilder},
    schema::{ObjectBuilder, Type},
    Content, OpenApi, Ref, RefOr,
};

/// The media type of every error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The shared error answers, by status: name in `components.responses`, and
/// what it means.
const SHARED: &[(&str, &str, &str)] = &[
    ("400", "MalformedRequest", "The body is not JSON, or not sent with Content-Type: application/json"),
    ("401", "Unauthorized", "No credentials, or credentials that are not valid"),
    ("403", "Forbidden", "The caller's role may not do this, or a driver asks for what is not its own"),
    ("404", "NotFound", "Unknown, or another company's"),
    (
        "409",
        "Conflict",
        "Valid, but refused by the current state or a resource the request names (`errors[]` names the \
         fields when they are to blame), or the same Idempotency-Key is still running",
    ),
    ("413", "PayloadTooLarge", "The body is over the size limit"),
    ("422", "ValidationFailed", "Invalid fields, query parameters or Idempotency-Key; errors[] names each"),
    ("429", "RateLimited", "Over the rate limit; retry after Retry-After seconds"),
    ("503", "RequestTimeout", "The request did not finish within the request timeout"),
];

fn problem_content() -> Content {
    Content::new(Some(Ref::from_schema_name("Problem")))
}

fn shared_response(status: &str, description: &str) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(PROBLEM_JSON, problem_content());
    let integer = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1));
    match status {
        "429" => response = response.header("Retry-After", HeaderBuilder::new().schema(integer()).build()),
        "401" => {
            let bearer = ObjectBuilder::new().schema_type(Type::String);
            response = response.header("WWW-Authenticate", HeaderBuilder::new().schema(bearer).build());
        }
        _ => {}
    }
    response.build()
}

/// Whether the error answer for `status` applies to `operation` on `path`.
fn applies(status: &str, path: &str, operation: &Operation) -> bool {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let body = operation.request_body.is_some();
    let params = operation.parameters.iter().flatten();
    let mut query = false;
    let mut idempotent = false;
    for p in params {
        query |= p.parameter_in == ParameterIn::Query;
        idempotent |= p.parameter_in == ParameterIn::Header && p.name == "Idempotency-Key";
    }
    let never_waits = matches!(path, "/health" | "/health/live" | "/health/ready");
    match status {
        "400" | "413" => body,
        "401" | "403" => secured,
        "404" => path.contains('{'),
        "409" => idempotent,
        "422" => body || query || idempotent,
        "429" | "503" => !never_waits,
        _ => false,
    }
}

/// Adds the shared error answers and makes every declared error a problem.
pub struct ProblemResponses;

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (status, name, description) in SHARED {
            components.responses.insert((*name).to_owned(), RefOr::T(shared_response(status, description)));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().filter_map(Option::as_mut) {
                problems_of(path, operation);
            }
        }
    }
}

fn problems_of(path: &str, operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        if status.as_str() < "400" {
            continue;
        }
        if let RefOr::T(response) = response {
            // Declared with `body = Problem`: utoipa says application/json.
            let is_problem =
                |c: &Content| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
            if response.content.is_empty() {
                response.content.insert(PROBLEM_JSON.to_owned(), problem_content());
            } else if response.content.get("application/json").is_some_and(is_problem) {
                if let Some(content) = response.content.shift_remove("application/json") {
                    response.content.insert(PROBLEM_JSON.to_owned(), content);
                }
            }
        }
    }
    for (status, name, _) in SHARED {
        if applies(status, path, operation) && !operation.responses.responses.contains_key(*status) {
            operation.responses.responses.insert((*status).to_owned(), RefOr::Ref(Ref::from_response_name(*name)));
        }
    }
}
