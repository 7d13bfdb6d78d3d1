//! The `xml` parser.
//!
//! The file is read into a small tree that keeps every event `quick-xml` reports
//! (declaration, comments, whitespace, entity references) verbatim, so only the
//! elements and attributes we change look different when it is written back (Wings
//! re-indents the whole document).
//!
//! A `find` key is a path from the root element: dotted as all corpus eggs use
//! (`MyConfigDedicated.SessionSettings.GameMode`), or slash-separated XPath-like
//! (`/ServerSettings/property[@name='ServerPort']/@value`), with `*` for any element,
//! `[@attr='v']` predicates and a final `@attr` to set an attribute instead of the text.
//! Every matching element is updated. For unconditional values missing elements are
//! created (with the predicate's attributes), indented like their siblings; a missing
//! file becomes a document whose root is the key's first element. A value of the form
//! `[attr='v']` sets that attribute (Wings' `xmlValueMatchRegex`).

use quick_xml::Reader;
use quick_xml::Writer;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::Error;
use super::replacement::Replacement;

#[derive(Debug)]
enum Node {
    Elem(Element),
    Other(Event<'static>),
}

#[derive(Debug)]
struct Element {
    start: BytesStart<'static>,
    children: Vec<Node>,
    /// Written as `<name/>` while it has no children.
    empty: bool,
}

impl Element {
    fn name(&self) -> String {
        self.start.name().as_ref().to_owned()
    }

    fn attr(&self, name: &str) -> Option<String> {
        self.start
            .attributes()
            .with_checks(false)
            .flatten()
            .find(|a| a.key.as_ref() == name)
            .map(|a| {
                a.normalized_value(XmlVersion::Implicit1_0)
                    .map_or_else(|_| a.value.to_string(), |v| v.into_owned())
            })
    }

    fn set_attr(&mut self, name: &str, value: &str) {
        let mut start = BytesStart::new(self.name());
        let mut replaced = false;
        for attr in self.start.attributes().with_checks(false).flatten() {
            if attr.key.as_ref() == name {
                if !replaced {
                    start.push_attribute((name, value));
                    replaced = true;
                }
            } else {
                start.push_attribute(attr);
            }
        }
        if !replaced {
            start.push_attribute((name, value));
        }
        self.start = start.into_owned();
    }

    /// The element's own text, unescaped and trimmed.
    fn text(&self) -> String {
        let mut out = String::new();
        for child in &self.children {
            match child {
                Node::Other(Event::Text(t)) => out.push_str(&unescape_or_raw(t)),
                Node::Other(Event::GeneralRef(r)) => {
                    out.push_str(&unescape_or_raw(&format!("&{};", &**r)));
                }
                Node::Other(Event::CData(c)) => out.push_str(c),
                _ => {}
            }
        }
        out.trim().to_owned()
    }

    /// Marks a `<name />` element as having content; `<name >` would look odd.
    fn open(&mut self) {
        if self.empty {
            self.empty = false;
            let name_len = self.start.name().as_ref().len();
            let content = self.start.trim_end().to_owned();
            self.start = BytesStart::from_content(content, name_len);
        }
    }

    fn set_text(&mut self, value: &str) {
        self.children.retain(|c| {
            !matches!(
                c,
                Node::Other(Event::Text(_) | Event::GeneralRef(_) | Event::CData(_))
            )
        });
        self.children.insert(
            0,
            Node::Other(Event::Text(BytesText::new(value).into_owned())),
        );
        self.open();
    }

    /// Appends `child`, indented like the existing children when they are indented.
    fn append(&mut self, child: Element) {
        self.open();
        let indent = self.children.first().and_then(whitespace);
        let ends_with_ws = self.children.last().and_then(whitespace).is_some();
        match indent {
            Some(indent) if ends_with_ws && self.children.len() >= 2 => {
                let at = self.children.len() - 1;
                self.children.insert(at, Node::Elem(child));
                self.children.insert(
                    at,
                    Node::Other(Event::Text(BytesText::from_escaped(indent))),
                );
            }
            _ => self.children.push(Node::Elem(child)),
        }
    }
}

fn whitespace(node: &Node) -> Option<String> {
    match node {
        Node::Other(Event::Text(t)) if t.trim().is_empty() => Some(t.to_string()),
        _ => None,
    }
}

fn unescape_or_raw(raw: &str) -> String {
    quick_xml::escape::unescape(raw).map_or_else(|_| raw.to_owned(), |s| s.into_owned())
}

/// One step of a path: an element name (`*` for any) and `[@attr='value']` predicates.
#[derive(Debug, PartialEq)]
struct Step {
    name: String,
    preds: Vec<(String, String)>,
}

#[derive(Debug, PartialEq)]
enum Leaf {
    Text,
    Attr(String),
}

impl Step {
    fn matches(&self, element: &Element) -> bool {
        (self.name == "*" || element.name() == self.name)
            && self
                .preds
                .iter()
                .all(|(k, v)| element.attr(k).as_deref() == Some(v.as_str()))
    }

    fn create(&self) -> Element {
        let mut start = BytesStart::new(self.name.clone());
        for (k, v) in &self.preds {
            start.push_attribute((k.as_str(), v.as_str()));
        }
        Element {
            start,
            children: Vec::new(),
            empty: true,
        }
    }
}

/// Splits on `sep` outside `[...]`.
fn split_outside_brackets(path: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut from = 0;
    for (at, c) in path.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                parts.push(&path[from..at]);
                from = at + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&path[from..]);
    parts
}

fn parse_path(key: &str) -> Option<(Vec<Step>, Leaf)> {
    let mut parts = match key.strip_prefix('/') {
        Some(rest) => split_outside_brackets(rest, '/'),
        None => split_outside_brackets(key, '.'),
    };
    parts.retain(|p| !p.is_empty());
    let leaf = match parts.last().and_then(|p| p.strip_prefix('@')) {
        Some(attr) => {
            let attr = attr.to_owned();
            parts.pop();
            Leaf::Attr(attr)
        }
        None => Leaf::Text,
    };
    let mut steps = Vec::with_capacity(parts.len());
    for part in parts {
        let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        let mut preds = Vec::new();
        while !rest.is_empty() {
            let inner = rest.strip_prefix("[@")?;
            let close = inner.find(']')?;
            let (attr, value) = inner[..close].split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))?;
            preds.push((attr.trim().to_owned(), value.to_owned()));
            rest = &inner[close + 1..];
        }
        if name.is_empty() {
            return None;
        }
        steps.push(Step {
            name: name.to_owned(),
            preds,
        });
    }
    (!steps.is_empty()).then_some((steps, leaf))
}

fn parse(content: &str) -> Result<Vec<Node>, Error> {
    let mut reader = Reader::from_str(content);
    let mut stack: Vec<Element> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    let push = |stack: &mut Vec<Element>, top: &mut Vec<Node>, node: Node| match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => top.push(node),
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| Error::malformed("xml", &e))?;
        match event {
            Event::Eof => break,
            Event::Start(start) => stack.push(Element {
                start: start.into_owned(),
                children: Vec::new(),
                empty: false,
            }),
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| Error::malformed("xml", &"unexpected closing tag"))?;
                push(&mut stack, &mut top, Node::Elem(element));
            }
            Event::Empty(start) => push(
                &mut stack,
                &mut top,
                Node::Elem(Element {
                    start: start.into_owned(),
                    children: Vec::new(),
                    empty: true,
                }),
            ),
            other => push(&mut stack, &mut top, Node::Other(other.into_owned())),
        }
    }
    if let Some(open) = stack.last() {
        return Err(Error::malformed(
            "xml",
            &format!("element <{}> is never closed", open.name()),
        ));
    }
    if top.iter().filter(|n| matches!(n, Node::Elem(_))).count() > 1 {
        return Err(Error::malformed("xml", &"more than one root element"));
    }
    Ok(top)
}

fn write_nodes(nodes: &[Node], writer: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
    for node in nodes {
        match node {
            Node::Other(event) => writer.write_event(event.borrow())?,
            Node::Elem(element) if element.empty && element.children.is_empty() => {
                writer.write_event(Event::Empty(element.start.borrow()))?;
            }
            Node::Elem(element) => {
                writer.write_event(Event::Start(element.start.borrow()))?;
                write_nodes(&element.children, writer)?;
                writer.write_event(Event::End(BytesEnd::new(element.name())))?;
            }
        }
    }
    Ok(())
}

pub(crate) fn edit(content: &str, replacements: &[Replacement]) -> Result<String, Error> {
    let fresh = content.trim().is_empty();
    let mut top = if fresh {
        vec![Node::Other(Event::Decl(BytesDecl::new(
            "1.0",
            Some("utf-8"),
            None,
        )))]
    } else {
        parse(content)?
    };
    let mut changed = false;
    for rep in replacements {
        changed |= apply(&mut top, rep);
    }
    if !changed && !fresh {
        return Ok(content.to_owned());
    }
    let buffer = Vec::with_capacity(content.len() + 64);
    // A document we made from nothing has no layout to keep: indent it like Wings does.
    let mut writer = if fresh {
        Writer::new_with_indent(buffer, b' ', 2)
    } else {
        Writer::new(buffer)
    };
    write_nodes(&top, &mut writer).map_err(|e| Error::malformed("xml", &e))?;
    let mut out =
        String::from_utf8(writer.into_inner()).map_err(|e| Error::malformed("xml", &e))?;
    if fresh {
        out.push('\n');
    }
    Ok(out)
}

/// Applies one replacement; returns whether the document changed.
fn apply(top: &mut Vec<Node>, rep: &Replacement) -> bool {
    let Some((steps, leaf)) = parse_path(&rep.key) else {
        tracing::debug!(key = %rep.key, "unsupported xml path in config file");
        return false;
    };
    let Some((root_step, rest)) = steps.split_first() else {
        return false;
    };
    let root = top.iter_mut().find_map(|n| match n {
        Node::Elem(e) => Some(e),
        Node::Other(_) => None,
    });
    match root {
        Some(root) if root_step.matches(root) => visit(root, rest, &leaf, rep),
        Some(_) => false,
        None if rep.creates() && root_step.name != "*" => {
            let mut root = root_step.create();
            let changed = visit(&mut root, rest, &leaf, rep);
            if changed {
                top.push(Node::Elem(root));
            }
            changed
        }
        None => false,
    }
}

fn visit(element: &mut Element, steps: &[Step], leaf: &Leaf, rep: &Replacement) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return set_leaf(element, leaf, rep);
    };
    let mut changed = false;
    let mut matched = false;
    for child in &mut element.children {
        if let Node::Elem(child) = child
            && step.matches(child)
        {
            matched = true;
            changed |= visit(child, rest, leaf, rep);
        }
    }
    if !matched && rep.creates() && step.name != "*" {
        let mut child = step.create();
        if visit(&mut child, rest, leaf, rep) {
            element.append(child);
            changed = true;
        }
    }
    changed
}

fn set_leaf(element: &mut Element, leaf: &Leaf, rep: &Replacement) -> bool {
    match leaf {
        Leaf::Attr(name) => {
            let current = element.attr(name);
            let Some(new) = rep.new_text(current.as_deref()) else {
                return false;
            };
            if current.as_deref() == Some(new.as_str()) {
                return false;
            }
            element.set_attr(name, &new);
            true
        }
        Leaf::Text => {
            let current = element.text();
            let Some(new) = rep.new_text(Some(&current)) else {
                return false;
            };
            if let Some((attr, value)) = attribute_value(&new) {
                if element.attr(attr).as_deref() == Some(value) {
                    return false;
                }
                element.set_attr(attr, value);
                return true;
            }
            if current == new && !element.children.is_empty() {
                return false;
            }
            element.set_text(&new);
            true
        }
    }
}

/// Wings' `[attr='value']` form of a value.
fn attribute_value(value: &str) -> Option<(&str, &str)> {
    let inner = value.strip_prefix('[')?.strip_suffix("']")?;
    let (attr, value) = inner.split_once("='")?;
    (!attr.is_empty() && attr.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .then_some((attr, value))
}

#[cfg(test)]
mod tests {
    use super::super::replacement::{Condition, NewValue};
    use super::*;

    fn rep(key: &str, value: &str) -> Replacement {
        Replacement {
            key: key.into(),
            when: None,
            value: NewValue::Text(value.into()),
        }
    }

    #[test]
    fn paths() {
        let (steps, leaf) =
            parse_path("/ServerSettings/property[@name='ServerPort']/@value").expect("path");
        assert_eq!(steps.len(), 2);
        assert_eq!(
            steps[1].preds,
            vec![("name".to_owned(), "ServerPort".to_owned())]
        );
        assert_eq!(leaf, Leaf::Attr("value".into()));
        let (steps, leaf) = parse_path("Settings.Port").expect("path");
        assert_eq!(
            steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["Settings", "Port"]
        );
        assert_eq!(leaf, Leaf::Text);
        assert!(parse_path("a[position()=1]").is_none());
        assert!(parse_path("").is_none());
    }

    #[test]
    fn edits_text_and_keeps_the_rest_verbatim() {
        let input = "<?xml version=\"1.0\"?>\n<!-- keep -->\n<Settings>\n  <Port>4499</Port>\n  <Name>a &amp; b</Name>\n  <Empty />\n</Settings>\n";
        let out = edit(input, &[rep("Settings.Port", "5000")]).expect("xml");
        assert_eq!(out, input.replace("4499", "5000"));
        let out = edit(input, &[rep("Settings.Name", "x < y")]).expect("xml");
        assert!(out.contains("<Name>x &lt; y</Name>"), "{out}");
        let out = edit(input, &[rep("Settings.Empty", "x")]).expect("xml");
        assert_eq!(out, input.replace("<Empty />", "<Empty>x</Empty>"));
    }

    #[test]
    fn creates_missing_elements_indented() {
        let input = "<A>\n  <B>1</B>\n</A>\n";
        let out = edit(input, &[rep("A.C.D", "2")]).expect("xml");
        assert_eq!(out, "<A>\n  <B>1</B>\n  <C><D>2</D></C>\n</A>\n");
        let fresh = edit("", &[rep("Settings.Port", "1")]).expect("xml");
        assert_eq!(
            fresh,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Settings>\n  <Port>1</Port>\n</Settings>\n"
        );
    }

    #[test]
    fn attributes_by_predicate_and_by_value_form() {
        let input = "<ServerSettings>\n  <property name=\"ServerPort\" value=\"26900\"/>\n  <property name=\"Other\" value=\"1\"/>\n</ServerSettings>";
        let out = edit(
            input,
            &[rep(
                "/ServerSettings/property[@name='ServerPort']/@value",
                "27000",
            )],
        )
        .expect("xml");
        assert_eq!(out, input.replace("26900", "27000"));
        let out = edit(
            input,
            &[rep("ServerSettings.property[@name='Other']", "[value='9']")],
        )
        .expect("xml");
        assert_eq!(out, input.replace("\"1\"", "\"9\""));
    }

    #[test]
    fn conditions_and_malformed() {
        let only = Replacement {
            key: "A.B".into(),
            when: Some(Condition::Equals("1".into())),
            value: NewValue::Text("2".into()),
        };
        assert_eq!(
            edit("<A><B>1</B></A>", &[only]).expect("xml"),
            "<A><B>2</B></A>"
        );
        let only = Replacement {
            key: "A.C".into(),
            when: Some(Condition::Equals("1".into())),
            value: NewValue::Text("2".into()),
        };
        assert_eq!(
            edit("<A><B>1</B></A>", &[only]).expect("xml"),
            "<A><B>1</B></A>"
        );
        assert!(edit("<A><B></A>", &[rep("A.B", "1")]).is_err());
        assert!(edit("<A>", &[rep("A.B", "1")]).is_err());
        // A different root is left alone rather than guessed at.
        assert_eq!(edit("<X/>", &[rep("A.B", "1")]).expect("xml"), "<X/>");
    }
}
