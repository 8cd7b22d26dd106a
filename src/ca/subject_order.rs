//! RDN orders beyond the conventional one: a CA's `subject_order` (gateway.toml) completed with
//! every DN attribute it leaves out, and the order a CA certificate's own subject uses (what
//! `ca import` keeps for the subjects that CA signs).

use der::Decode;
use x509_cert::Certificate;

use super::Attribute;

/// Every DN attribute in an order that keeps `listed` as written and places each attribute it
/// leaves out beside its neighbours in the conventional order (C, ST, L, O, OU, title, CN, …),
/// or in its reverse when `listed` runs that way (CN before O before C). The conventional order
/// itself for an empty list. SANs and repeats in `listed` are ignored.
pub fn complete_subject_order(listed: &[Attribute]) -> Vec<Attribute> {
    let mut result: Vec<Attribute> = Vec::new();
    for a in listed.iter().filter(|a| !a.is_san()) {
        if !result.contains(a) {
            result.push(*a);
        }
    }
    let conventional = Attribute::CONVENTIONAL_ORDER.to_vec();
    let reversed: Vec<Attribute> = conventional.iter().rev().copied().collect();
    let base = if follows(&result, &reversed) && !follows(&result, &conventional) {
        reversed
    } else {
        conventional
    };
    for (index, attribute) in base.iter().enumerate() {
        if result.contains(attribute) {
            continue;
        }
        let after_predecessor = base[..index]
            .iter()
            .rev()
            .find_map(|p| result.iter().position(|r| r == p))
            .map(|i| i + 1);
        let before_successor = || {
            base[index + 1..]
                .iter()
                .find_map(|s| result.iter().position(|r| r == s))
        };
        let at = after_predecessor
            .or_else(before_successor)
            .unwrap_or(result.len());
        result.insert(at, *attribute);
    }
    result
}

/// True when the attributes of `list` appear in `order` in the same relative order.
fn follows(list: &[Attribute], order: &[Attribute]) -> bool {
    let mut rest = order.iter();
    list.iter().all(|a| rest.any(|o| o == a))
}

/// Format attribute names (`countryname`, `commonname`, …) as a `subject_order` lists them:
/// DN attributes only, each once; completed by [`complete_subject_order`].
pub fn parse_subject_order(names: &[String]) -> Result<Vec<Attribute>, String> {
    let mut listed = Vec::new();
    for name in names {
        let attribute = Attribute::from_name(name)
            .filter(|a| !a.is_san())
            .ok_or_else(|| format!("`{name}` is not a subject DN attribute"))?;
        if listed.contains(&attribute) {
            return Err(format!("`{name}` is listed twice"));
        }
        listed.push(attribute);
    }
    Ok(complete_subject_order(&listed))
}

/// The attributes of a certificate's subject that format fields can set, in its RDN order
/// (first = most significant, as encoded); others (e.g. domainComponent) are skipped.
pub fn certificate_subject_attributes(certificate_der: &[u8]) -> Vec<Attribute> {
    let Ok(certificate) = Certificate::from_der(certificate_der) else {
        return Vec::new();
    };
    let mut order = Vec::new();
    for atv in certificate.tbs_certificate().subject().iter() {
        let known = Attribute::ALL
            .into_iter()
            .find(|a| a.oid() == Some(atv.oid));
        if let Some(a) = known
            && !order.contains(&a)
        {
            order.push(a);
        }
    }
    order
}

/// The RDN order to keep for the subjects a CA signs, from the CA certificate's own subject:
/// `None` when that subject follows the conventional order (nothing to keep), else the
/// complete order ([`complete_subject_order`]) that follows it.
pub fn kept_subject_order(certificate_der: &[u8]) -> Option<Vec<Attribute>> {
    let order = complete_subject_order(&certificate_subject_attributes(certificate_der));
    (order != Attribute::CONVENTIONAL_ORDER).then_some(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Attribute::*;

    #[test]
    fn a_conventional_list_completes_to_the_conventional_order() {
        assert_eq!(complete_subject_order(&[]), Attribute::CONVENTIONAL_ORDER);
        assert_eq!(
            complete_subject_order(&[CountryName, OrganizationName, CommonName]),
            Attribute::CONVENTIONAL_ORDER
        );
    }

    #[test]
    fn a_reversed_list_completes_to_the_reversed_order() {
        let order = complete_subject_order(&[CommonName, OrganizationName, CountryName]);
        let mut reversed = Attribute::CONVENTIONAL_ORDER.to_vec();
        reversed.reverse();
        assert_eq!(order, reversed);
    }

    #[test]
    fn another_order_is_kept_and_the_rest_placed_beside_their_neighbours() {
        let order = complete_subject_order(&[OrganizationName, CountryName, CommonName]);
        assert_eq!(order.len(), Attribute::CONVENTIONAL_ORDER.len());
        let at = |a: Attribute| order.iter().position(|o| *o == a).unwrap();
        assert!(at(OrganizationName) < at(CountryName) && at(CountryName) < at(CommonName));
        assert_eq!(at(OrganizationalUnitName), at(OrganizationName) + 1);
        assert_eq!(at(Surname), at(CommonName) + 1);
    }

    #[test]
    fn names_are_checked() {
        assert!(parse_subject_order(&["commonname".into(), "dnsname".into()]).is_err());
        assert!(parse_subject_order(&["commonname".into(), "CommonName".into()]).is_err());
        assert!(parse_subject_order(&["nope".into()]).is_err());
        let mut reversed = Attribute::CONVENTIONAL_ORDER.to_vec();
        reversed.reverse();
        assert_eq!(
            parse_subject_order(&["commonname".into(), "countryname".into()]).unwrap(),
            reversed
        );
    }
}
