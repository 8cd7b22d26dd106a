//! The OpenAPI 3.1 document, generated from the operations' `#[utoipa::path]` attributes and the
//! schemas of `model`: what is served is what the code does.

use std::sync::LazyLock;

use utoipa::openapi::security::SecurityScheme;
use utoipa::{Modify, OpenApi};

use super::model;
use super::operations;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ast-gateway REST API",
        description = "Soft tokens (PKCS#12) and the certificate database of ast-gateway, laid out like the CM REST API of the original product. Every operation needs an officer client certificate over HTTPS (mutual TLS); which officer roles each path needs is configured in conf/api.properties. Errors are `{\"error\": {\"code\", \"message\", \"requestId\"}}`, with the stable code also in the X-Ast-Error header. Timestamps are RFC 3339 (ISO 8601) in UTC.",
    ),
    servers((url = "/pgwy/api", description = "This service")),
    paths(
        operations::create_soft_token,
        operations::list_certificates,
        operations::certificate_details,
        operations::download_certificate,
        operations::revoke_certificate,
        operations::reinstate_certificate,
        operations::list_token_procedures,
        operations::list_handlers,
    ),
    components(schemas(model::ErrorBody, model::ErrorDetail)),
    modifiers(&OfficerCertificate),
    security(("officerCertificate" = [])),
    tags(
        (name = "softtokens", description = "Issue soft tokens"),
        (name = "certificates", description = "The certificate database: list, show, download, revoke, reinstate"),
        (name = "configuration", description = "Token procedures and AST handlers in effect"),
    )
)]
struct ApiDoc;

/// The `officerCertificate` security scheme: mutual TLS.
struct OfficerCertificate;

impl Modify for OfficerCertificate {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "officerCertificate",
            SecurityScheme::MutualTls {
                description: Some(
                    "An officer client certificate issued by the officers CA ([server] client_ca), registered with `ast-gateway officer issue` and holding the roles api.properties requires for the path".into(),
                ),
                deprecated: None,
                extensions: None,
            },
        );
    }
}

/// The document as JSON (built once).
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        serde_json::to_value(ApiDoc::openapi())
            .map(|mut doc| {
                complete(&mut doc);
                doc
            })
            .and_then(|doc| serde_json::to_string_pretty(&doc))
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    });
    &DOCUMENT
}

/// What every operation may answer besides its own responses: the header section over
/// `[limits] max_header_bytes` (answered before the operation runs) and an internal error.
const EVERY_OPERATION: &[(&str, &str)] = &[
    (
        "431",
        "The request's header section is larger than [limits] max_header_bytes (`too-large`)",
    ),
    (
        "500",
        "An internal error; the log has the detail under the request id (`internal`)",
    ),
];

/// Completes what the `#[utoipa::path]` attributes cannot say: a schema for every answer that is
/// not JSON (a file: PEM text or binary, so that generated clients keep the operation), and the
/// answers every operation may give.
fn complete(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (status, description) in EVERY_OPERATION {
            responses.entry(*status).or_insert_with(|| {
                json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
            });
        }
        for content in responses
            .values_mut()
            .filter_map(|r| r.get_mut("content"))
            .filter_map(Value::as_object_mut)
        {
            for (media, body) in content.iter_mut() {
                if body.get("schema").is_some() {
                    continue;
                }
                body["schema"] = if media == "application/x-pem-file" {
                    json!({"type": "string", "description": "PEM text"})
                } else {
                    json!({"type": "string", "format": "binary", "contentMediaType": media})
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_with_its_errors_and_the_security_scheme() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"]["officerCertificate"]["type"],
            "mutualTLS"
        );
        let operations = [
            ("/softtokens", "post", "createSoftToken"),
            ("/certificates", "get", "listCertificates"),
            (
                "/certificates/{serial}/details",
                "get",
                "getCertificateDetails",
            ),
            (
                "/certificates/{serial}/download",
                "get",
                "downloadCertificate",
            ),
            ("/certificates/revoke", "post", "revokeCertificate"),
            ("/certificates/reinstate", "post", "reinstateCertificate"),
            ("/tokenprocedures", "get", "listTokenProcedures"),
            ("/handlers", "get", "listHandlers"),
        ];
        assert_eq!(doc["paths"].as_object().unwrap().len(), operations.len());
        for (path, method, id) in operations {
            let op = &doc["paths"][path][method];
            assert_eq!(op["operationId"], id, "{path}");
            for status in ["401", "403", "404"] {
                assert_eq!(
                    op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{path} {status}"
                );
            }
            assert_eq!(
                op["security"][0]["officerCertificate"],
                serde_json::json!([])
            );
        }
        let list = &doc["paths"]["/certificates"]["get"]["parameters"];
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for name in [
            "subject",
            "serial",
            "status",
            "purpose",
            "issuedAfter",
            "issuedBefore",
            "expiringAfter",
            "expiringBefore",
            "limit",
            "cursor",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        let body = &doc["components"]["schemas"]["SoftTokenBody"];
        assert_eq!(body["required"], serde_json::json!(["password"]));
        // Every answer of every operation: a content type with a schema (generated clients drop
        // an answer without one), and the header-section and internal-error answers.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("431") && responses.contains_key("500"));
                for (status, response) in responses {
                    let content = response["content"].as_object().unwrap();
                    assert!(!content.is_empty(), "{method} {path} {status}");
                    for (media, body) in content {
                        assert!(
                            body["schema"].is_object(),
                            "{method} {path} {status} {media}"
                        );
                    }
                }
            }
        }
        let issued = &doc["paths"]["/softtokens"]["post"]["responses"]["200"]["content"];
        assert_eq!(issued["application/x-pkcs12"]["schema"]["format"], "binary");
        assert_eq!(issued["application/zip"]["schema"]["format"], "binary");
        let download =
            &doc["paths"]["/certificates/{serial}/download"]["get"]["responses"]["200"]["content"];
        assert_eq!(
            download["application/x-pem-file"]["schema"]["type"],
            "string"
        );
        assert_eq!(
            download["application/pkix-cert"]["schema"]["format"],
            "binary"
        );
        assert_eq!(
            download["application/octet-stream"]["schema"]["format"],
            "binary"
        );
        assert_eq!(
            issued["application/json"]["schema"]["$ref"],
            "#/components/schemas/SoftTokenJson"
        );
    }
}
