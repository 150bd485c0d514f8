//! Which expression to evaluate first.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Expr, MathError};

/// Checks an Id against GetMetricData's rule `^[a-z][a-zA-Z0-9_]*$` (at most
/// 255 characters, botocore `MetricId`).
pub fn validate_id(id: &str) -> Result<(), MathError> {
    let mut chars = id.chars();
    let valid = id.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(MathError::InvalidId { id: id.to_string() })
    }
}

/// Orders a request's expressions so every expression comes after the ones it
/// references. `metric_ids` are the MetricStat queries (they depend on
/// nothing); the result lists only the expression Ids. Independent
/// expressions keep request order.
///
/// Errors: an invalid or repeated Id, a reference to an Id no query has, and
/// a cycle (including an expression naming itself).
pub fn evaluation_order(
    metric_ids: &[String],
    expressions: &[(String, Expr)],
) -> Result<Vec<String>, MathError> {
    let mut seen = BTreeSet::new();
    for id in metric_ids
        .iter()
        .chain(expressions.iter().map(|(id, _)| id))
    {
        validate_id(id)?;
        if !seen.insert(id.as_str()) {
            return Err(MathError::DuplicateId { id: id.clone() });
        }
    }
    let mut dependencies: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (id, expr) in expressions {
        let references = expr.references();
        if let Some(unknown) = references.iter().find(|r| !seen.contains(r.as_str())) {
            return Err(MathError::UnknownId {
                id: unknown.clone(),
                referenced_by: id.clone(),
            });
        }
        let on_expressions = references
            .into_iter()
            .filter(|r| !metric_ids.contains(r))
            .collect();
        dependencies.insert(id.as_str(), on_expressions);
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        id: &'a str,
        dependencies: &'a BTreeMap<&'a str, Vec<String>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
        order: &mut Vec<String>,
    ) -> Result<(), MathError> {
        match marks.get(id) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = path.iter().position(|p| *p == id).unwrap_or(0);
                let mut ids: Vec<String> = path[start..].iter().map(|p| p.to_string()).collect();
                ids.push(id.to_string());
                return Err(MathError::Cycle { ids });
            }
            None => {}
        }
        marks.insert(id, Mark::Visiting);
        path.push(id);
        for dependency in &dependencies[id] {
            visit(dependency, dependencies, marks, path, order)?;
        }
        path.pop();
        marks.insert(id, Mark::Done);
        order.push(id.to_string());
        Ok(())
    }

    let mut marks = BTreeMap::new();
    let mut order = Vec::with_capacity(expressions.len());
    for (id, _) in expressions {
        visit(id, &dependencies, &mut marks, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn check(metrics: &[&str], expressions: &[(&str, &str)], expected: Result<&[&str], &str>) {
        let metric_ids: Vec<String> = metrics.iter().map(|m| m.to_string()).collect();
        let expressions: Vec<(String, Expr)> = expressions
            .iter()
            .map(|(id, text)| (id.to_string(), parse(text).unwrap()))
            .collect();
        let actual = evaluation_order(&metric_ids, &expressions).map_err(|e| e.to_string());
        let expected = expected
            .map(|ids| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>())
            .map_err(|e| e.to_string());
        assert_eq!(actual, expected);
    }

    #[test]
    fn orders_dependencies_first() {
        check(&["m1", "m2"], &[("e1", "m1 + m2")], Ok(&["e1"]));
        check(
            &["m1"],
            &[("e3", "e2 * 2"), ("e1", "m1"), ("e2", "e1 + m1")],
            Ok(&["e1", "e2", "e3"]),
        );
        check(
            &["m1"],
            &[("b", "m1"), ("a", "m1"), ("c", "a + b")],
            Ok(&["b", "a", "c"]),
        );
        check(&["m1", "m2"], &[("e1", "SUM(METRICS())")], Ok(&["e1"]));
        check(&[], &[("e1", "TIME_SERIES(1)")], Ok(&["e1"]));
    }

    #[test]
    fn reports_bad_graphs() {
        check(
            &["m1"],
            &[("e1", "m1 + m3")],
            Err("Unrecognized metric or expression Id 'm3' in the expression of 'e1'."),
        );
        check(
            &["m1"],
            &[("e1", "e2 + m1"), ("e2", "e1 * 2")],
            Err("Circular dependency between expressions: e1 -> e2 -> e1."),
        );
        check(
            &[],
            &[("e1", "e1 + 1")],
            Err("Circular dependency between expressions: e1 -> e1."),
        );
        check(
            &["m1"],
            &[("e0", "e1"), ("e1", "e2"), ("e2", "e3"), ("e3", "e1")],
            Err("Circular dependency between expressions: e1 -> e2 -> e3 -> e1."),
        );
        check(
            &["m1"],
            &[("m1", "1")],
            Err("The Id 'm1' is used by more than one query; Ids must be unique within a request."),
        );
        check(
            &["M1"],
            &[],
            Err("Invalid Id 'M1': an Id must start with a lowercase letter and contain only letters, numbers and underscores."),
        );
    }

    #[test]
    fn validates_ids() {
        for good in ["m1", "errorRate", "a_b_9", "x"] {
            assert_eq!(validate_id(good), Ok(()), "{good}");
        }
        for bad in ["", "1m", "_m", "Mx", "m-1", "m 1", "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
        assert!(validate_id(&"a".repeat(256)).is_err());
        assert_eq!(validate_id(&"a".repeat(255)), Ok(()));
    }
}
