//! Request bodies of `/networks` and `/volumes`, as docker's clients send them
//! (unset fields may come as `null`, so every field reads `null` as empty).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `POST /networks/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub driver: String,
    #[serde(deserialize_with = "null_as_default")]
    pub internal: bool,
    #[serde(rename = "IPAM", deserialize_with = "null_as_default")]
    pub ipam: Ipam,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    #[serde(
        rename = "EnableIPv6",
        deserialize_with = "null_as_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub enable_ipv6: bool,
}

/// A network's address management: one pool config is all berth uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    #[serde(deserialize_with = "null_as_default")]
    pub driver: String,
    #[serde(deserialize_with = "null_as_default")]
    pub config: Vec<IpamPool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamPool {
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub subnet: String,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway: String,
}

/// `POST /networks/{id}/connect` and `.../disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnectRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub container: String,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_config: Option<crate::EndpointConfig>,
    #[serde(deserialize_with = "null_as_default")]
    pub force: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreateRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub driver: String,
    #[serde(deserialize_with = "null_as_default")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_py_nulls_read_as_empty() {
        // docker-py's create_network sends every unset field as null.
        let body = r#"{"Name":"n","Driver":null,"Options":null,"IPAM":null,"Internal":false,
            "Labels":null,"EnableIPv6":null,"Attachable":null,"CheckDuplicate":true}"#;
        let req: NetworkCreateRequest = serde_json::from_str(body).unwrap();
        assert_eq!(req.name, "n");
        assert!(req.driver.is_empty() && req.ipam.config.is_empty() && !req.enable_ipv6);
        let body = r#"{"Name":"v","Driver":"local","DriverOpts":null,"Labels":null}"#;
        let req: VolumeCreateRequest = serde_json::from_str(body).unwrap();
        assert!(req.driver_opts.is_empty() && req.labels.is_empty());
        let body = r#"{"Container":"c","EndpointConfig":{"Aliases":null,"IPAMConfig":{"IPv4Address":"10.0.0.5"}}}"#;
        let req: NetworkConnectRequest = serde_json::from_str(body).unwrap();
        let ep = req.endpoint_config.unwrap();
        assert_eq!(ep.ipam_config.unwrap().ipv4_address, "10.0.0.5");
        assert!(ep.aliases.is_empty());
    }

    #[test]
    fn what_the_cli_sends_reads_back() {
        let req = NetworkCreateRequest {
            name: "app".into(),
            driver: "bridge".into(),
            ipam: Ipam {
                driver: "default".into(),
                config: vec![IpamPool {
                    subnet: "10.9.0.0/24".into(),
                    gateway: String::new(),
                }],
            },
            ..Default::default()
        };
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json["IPAM"]["Config"][0],
            serde_json::json!({"Subnet": "10.9.0.0/24"})
        );
        assert!(json.get("EnableIPv6").is_none());
        assert_eq!(
            serde_json::from_value::<NetworkCreateRequest>(json).unwrap(),
            req
        );
    }
}
