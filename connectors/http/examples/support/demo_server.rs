//! The demo API behind `examples/demo_api.rs` and `examples/saas_connector.rs`: a tiny
//! CRM with bearer auth, page-number pagination and an inclusive `updated_since`.
//!
//! - `GET /v1/customers?page=1&per_page=10&updated_since=<RFC 3339>` →
//!   `{"data": [...], "meta": {"page": 1}}`, sorted by `updated_at`
//! - `GET /v1/customers/{id}/orders` → `{"orders": [...]}`
//! - `POST /v1/_touch` updates one customer and adds one (to try incremental syncs)

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

struct Crm {
    token: String,
    customers: Vec<Value>,
    clock: u32,
}

fn customer(id: u32, minute: u32) -> Value {
    let city = ["Lyon", "Porto", "Gdańsk", "Turku"][id as usize % 4];
    json!({
        "id": id,
        "name": format!("Customer {id}"),
        "email": format!("customer{id}@example.com"),
        "balance": format!("{}.{:02}", id * 17 % 500, id % 100),
        "address": {"city": city, "country": "EU"},
        "updated_at": format!("2024-06-01T10:{:02}:{:02}Z", minute / 60, minute % 60),
    })
}

/// The demo API's router, requiring `Authorization: Bearer <token>`.
pub fn router(token: &str) -> Router {
    let crm = Crm {
        token: token.to_string(),
        customers: (1..=25).map(|i| customer(i, i)).collect(),
        clock: 25,
    };
    Router::new()
        .fallback(serve)
        .with_state(Arc::new(Mutex::new(crm)))
}

async fn serve(
    State(crm): State<Arc<Mutex<Crm>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut crm = crm.lock().unwrap();
    let bearer = format!("Bearer {}", crm.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "missing or wrong bearer token"})),
        )
            .into_response();
    }
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let path = uri.path();
    if method == Method::POST && path == "/v1/_touch" {
        crm.clock += 1;
        let (clock, n) = (crm.clock, crm.customers.len() as u32);
        let i = (clock as usize * 7) % crm.customers.len();
        crm.customers[i]["updated_at"] = customer(0, clock)["updated_at"].clone();
        crm.customers[i]["name"] = json!(format!("Customer {} (updated)", i + 1));
        crm.clock += 1;
        let added = customer(n + 1, crm.clock);
        crm.customers.push(added);
        return Json(json!({"updated": i + 1, "added": n + 1})).into_response();
    }
    if path == "/v1/customers" {
        let page: usize = q
            .get("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let per: usize = q
            .get("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(10)
            .clamp(1, 100);
        let mut list: Vec<Value> = crm
            .customers
            .iter()
            .filter(|c| {
                q.get("updated_since")
                    .is_none_or(|s| c["updated_at"].as_str().unwrap_or("") >= s.as_str())
            })
            .cloned()
            .collect();
        list.sort_by(|a, b| a["updated_at"].as_str().cmp(&b["updated_at"].as_str()));
        let data: Vec<Value> = list.into_iter().skip((page - 1) * per).take(per).collect();
        return Json(json!({"data": data, "meta": {"page": page}})).into_response();
    }
    if let Some(id) = path
        .strip_prefix("/v1/customers/")
        .and_then(|r| r.strip_suffix("/orders"))
    {
        let Ok(id) = id.parse::<u32>() else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let orders: Vec<Value> = (0..id % 4)
            .map(|k| json!({"id": id * 10 + k, "amount": format!("{}.50", 10 + k * 5), "placed_on": format!("2024-05-{:02}", 1 + k)}))
            .collect();
        return Json(json!({"orders": orders})).into_response();
    }
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "no such path"})),
    )
        .into_response()
}
