//! XSS detection, libinjection's `libinjection_xss`.
//!
//! The input is tokenized as HTML5 ([`html5`]) from each context it may land in (text, or an
//! unquoted, `'`, `"` or `` ` `` attribute value). It is XSS when a token is a doctype, a
//! blacklisted tag (`script`, `iframe`, `svg*`, `xsl*`, ...), a blacklisted attribute
//! (`on*` event handlers from libinjection's list, `style`, `xmlns*`, `xlink*`, ...), a URL
//! attribute (`href`, `src`, ...) whose value starts with a dangerous scheme (`javascript:`,
//! `vbscript:`, `data:`, `view-source:`, HTML-entity-encoded or not), or an IE-specific
//! comment (conditional comments, `` ` `` in comments, `<?import`, `<!ENTITY`).

mod html5;

use html5::{Html5, Start, TokenType};

/// How an attribute is dangerous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attr {
    None,
    /// Always.
    Black,
    /// When its value is a dangerous URL.
    Url,
    /// Inline style.
    Style,
    /// Its value names another attribute (SVG `attributeName`).
    Indirect,
}

/// Attributes by name (upper case).
const BLACK_ATTRS: &[(&[u8], Attr)] = &[
    (b"ACTION", Attr::Url),             // form
    (b"ATTRIBUTENAME", Attr::Indirect), // SVG
    (b"BY", Attr::Url),                 // SVG
    (b"BACKGROUND", Attr::Url),         // IE6, O11
    (b"DATAFORMATAS", Attr::Black),     // IE
    (b"DATASRC", Attr::Black),          // IE
    (b"DYNSRC", Attr::Url),             // obsolete img attribute
    (b"FILTER", Attr::Style),           // Opera, SVG inline style
    (b"FORMACTION", Attr::Url),         // HTML5
    (b"FOLDER", Attr::Url),             // A tags, IE only
    (b"FROM", Attr::Url),               // SVG
    (b"HANDLER", Attr::Url),            // SVG Tiny, Opera
    (b"HREF", Attr::Url),
    (b"LOWSRC", Attr::Url), // obsolete img attribute
    (b"POSTER", Attr::Url), // Opera 10, 11
    (b"SRC", Attr::Url),
    (b"STYLE", Attr::Style),
    (b"TO", Attr::Url),     // SVG
    (b"VALUES", Attr::Url), // SVG
    (b"XLINK:HREF", Attr::Url),
];

/// Tags that are always dangerous (upper case); `SVG*` and `XSL*` are too.
const BLACK_TAGS: &[&[u8]] = &[
    b"APPLET",
    b"BASE",
    b"COMMENT", // IE, html5sec.org #38
    b"EMBED",
    b"FRAME",
    b"FRAMESET",
    b"HANDLER", // Opera SVG, effectively a script tag
    b"IFRAME",
    b"IMPORT",
    b"ISINDEX",
    b"LINK",
    b"LISTENER",
    b"META",
    b"NOSCRIPT",
    b"OBJECT",
    b"SCRIPT",
    b"STYLE",
    b"VMLFRAME",
    b"XML",
    b"XSS",
];

/// JavaScript event names (upper case, after `on`), matched as prefixes of the attribute name
/// past its `on` (libinjection 4, from WebKit's `EventNames.h`).
const BLACK_ON_EVENTS: &[&[u8]] = &[
    b"ABORT",
    b"ACTIVATE",
    b"ACTIVE",
    b"ADDSOURCEBUFFER",
    b"ADDSTREAM",
    b"ADDTRACK",
    b"AFTERPRINT",
    b"ANIMATIONCANCEL",
    b"ANIMATIONEND",
    b"ANIMATIONITERATION",
    b"ANIMATIONSTART",
    b"AUDIOEND",
    b"AUDIOPROCESS",
    b"AUDIOSTART",
    b"AUTOCOMPLETEERROR",
    b"AUTOCOMPLETE",
    b"BEFOREACTIVATE",
    b"BEFORECOPY",
    b"BEFORECUT",
    b"BEFOREINPUT",
    b"BEFORELOAD",
    b"BEFOREPASTE",
    b"BEFOREPRINT",
    b"BEFOREUNLOAD",
    b"BEGINEVENT",
    b"BLOCKED",
    b"BLUR",
    b"BOUNDARY",
    b"BUFFEREDAMOUNTLOW",
    b"CACHED",
    b"CANCEL",
    b"CANPLAYTHROUGH",
    b"CANPLAY",
    b"CHANGE",
    b"CHARGINGCHANGE",
    b"CHARGINGTIMECHANGE",
    b"CHECKING",
    b"CLICK",
    b"CLOSE",
    b"COMPLETE",
    b"COMPOSITIONEND",
    b"COMPOSITIONSTART",
    b"COMPOSITIONUPDATE",
    b"CONNECTING",
    b"CONNECTIONSTATECHANGE",
    b"CONNECT",
    b"CONTEXTMENU",
    b"CONTROLLERCHANGE",
    b"COPY",
    b"CUECHANGE",
    b"CUT",
    b"DATAAVAILABLE",
    b"DATACHANNEL",
    b"DBLCLICK",
    b"DEVICECHANGE",
    b"DEVICEMOTION",
    b"DEVICEORIENTATION",
    b"DISCHARGINGTIMECHANGE",
    b"DISCONNECT",
    b"DOMACTIVATE",
    b"DOMCHARACTERDATAMODIFIED",
    b"DOMCONTENTLOADED",
    b"DOMFOCUSIN",
    b"DOMFOCUSOUT",
    b"DOMNODEINSERTEDINTODOCUMENT",
    b"DOMNODEINSERTED",
    b"DOMNODEREMOVEDFROMDOCUMENT",
    b"DOMNODEREMOVED",
    b"DOMSUBTREEMODIFIED",
    b"DOWNLOADING",
    b"DRAGEND",
    b"DRAGENTER",
    b"DRAGLEAVE",
    b"DRAGOVER",
    b"DRAGSTART",
    b"DRAG",
    b"DROP",
    b"DURATIONCHANGE",
    b"EMPTIED",
    b"ENCRYPTED",
    b"ENDED",
    b"ENDEVENT",
    b"END",
    b"ENTERPICTUREINPICTURE",
    b"ENTER",
    b"ERROR",
    b"EXIT",
    b"FETCH",
    b"FINISH",
    b"FOCUSIN",
    b"FOCUSOUT",
    b"FOCUS",
    b"FORMCHANGE",
    b"FORMINPUT",
    b"GAMEPADCONNECTED",
    b"GAMEPADDISCONNECTED",
    b"GESTURECHANGE",
    b"GESTUREEND",
    b"GESTURESCROLLEND",
    b"GESTURESCROLLSTART",
    b"GESTURESCROLLUPDATE",
    b"GESTURESTART",
    b"GESTURETAPDOWN",
    b"GESTURETAP",
    b"GOTPOINTERCAPTURE",
    b"HASHCHANGE",
    b"ICECANDIDATEERROR",
    b"ICECANDIDATE",
    b"ICECONNECTIONSTATECHANGE",
    b"ICEGATHERINGSTATECHANGE",
    b"INACTIVE",
    b"INPUTSOURCESCHANGE",
    b"INPUT",
    b"INSTALL",
    b"INVALID",
    b"KEYDOWN",
    b"KEYPRESS",
    b"KEYSTATUSESCHANGE",
    b"KEYUP",
    b"LANGUAGECHANGE",
    b"LEAVEPICTUREINPICTURE",
    b"LEVELCHANGE",
    b"LOADEDDATA",
    b"LOADEDMETADATA",
    b"LOADEND",
    b"LOADINGDONE",
    b"LOADINGERROR",
    b"LOADING",
    b"LOADSTART",
    b"LOAD",
    b"LOSTPOINTERCAPTURE",
    b"MARK",
    b"MERCHANTVALIDATION",
    b"MESSAGEERROR",
    b"MESSAGE",
    b"MOUSEDOWN",
    b"MOUSEENTER",
    b"MOUSELEAVE",
    b"MOUSEMOVE",
    b"MOUSEOUT",
    b"MOUSEOVER",
    b"MOUSEUP",
    b"MOUSEWHEEL",
    b"MUTE",
    b"NEGOTIATIONNEEDED",
    b"NEXTTRACK",
    b"NOMATCH",
    b"NOUPDATE",
    b"OBSOLETE",
    b"OFFLINE",
    b"ONLINE",
    b"OPEN",
    b"ORIENTATIONCHANGE",
    b"OVERCONSTRAINED",
    b"OVERFLOWCHANGED",
    b"PAGEHIDE",
    b"PAGESHOW",
    b"PASTE",
    b"PAUSE",
    b"PAYERDETAILCHANGE",
    b"PAYMENTAUTHORIZED",
    b"PAYMENTMETHODCHANGE",
    b"PAYMENTMETHODSELECTED",
    b"PLAYING",
    b"PLAY",
    b"POINTERCANCEL",
    b"POINTERDOWN",
    b"POINTERENTER",
    b"POINTERLEAVE",
    b"POINTERLOCKCHANGE",
    b"POINTERLOCKERROR",
    b"POINTERMOVE",
    b"POINTEROUT",
    b"POINTEROVER",
    b"POINTERUP",
    b"POPSTATE",
    b"PREVIOUSTRACK",
    b"PROCESSORERROR",
    b"PROGRESS",
    b"PROPERTYCHANGE",
    b"RATECHANGE",
    b"READYSTATECHANGE",
    b"REJECTIONHANDLED",
    b"REMOVESOURCEBUFFER",
    b"REMOVESTREAM",
    b"REMOVETRACK",
    b"REMOVE",
    b"RESET",
    b"RESIZE",
    b"RESOURCETIMINGBUFFERFULL",
    b"RESULT",
    b"RESUME",
    b"SCROLL",
    b"SEARCH",
    b"SECURITYPOLICYVIOLATION",
    b"SEEKED",
    b"SEEKING",
    b"SELECTEND",
    b"SELECTIONCHANGE",
    b"SELECTSTART",
    b"SELECT",
    b"SHIPPINGADDRESSCHANGE",
    b"SHIPPINGCONTACTSELECTED",
    b"SHIPPINGMETHODSELECTED",
    b"SHIPPINGOPTIONCHANGE",
    b"SHOW",
    b"SIGNALINGSTATECHANGE",
    b"SLOTCHANGE",
    b"SOUNDEND",
    b"SOUNDSTART",
    b"SOURCECLOSE",
    b"SOURCEENDED",
    b"SOURCEOPEN",
    b"SPEECHEND",
    b"SPEECHSTART",
    b"SQUEEZEEND",
    b"SQUEEZESTART",
    b"SQUEEZE",
    b"STALLED",
    b"STARTED",
    b"START",
    b"STATECHANGE",
    b"STOP",
    b"STORAGE",
    b"SUBMIT",
    b"SUCCESS",
    b"SUSPEND",
    b"TEXTINPUT",
    b"TIMEOUT",
    b"TIMEUPDATE",
    b"TOGGLE",
    b"TONECHANGE",
    b"TOUCHCANCEL",
    b"TOUCHEND",
    b"TOUCHFORCECHANGE",
    b"TOUCHMOVE",
    b"TOUCHSTART",
    b"TRACK",
    b"TRANSITIONCANCEL",
    b"TRANSITIONEND",
    b"TRANSITIONRUN",
    b"TRANSITIONSTART",
    b"UNCAPTUREDERROR",
    b"UNHANDLEDREJECTION",
    b"UNLOAD",
    b"UNMUTE",
    b"UPDATEEND",
    b"UPDATEFOUND",
    b"UPDATEREADY",
    b"UPDATESTART",
    b"UPDATE",
    b"UPGRADENEEDED",
    b"VALIDATEMERCHANT",
    b"VERSIONCHANGE",
    b"VISIBILITYCHANGE",
    b"VOLUMECHANGE",
    b"WAITINGFORKEY",
    b"WAITING",
    b"WEBGLCONTEXTCHANGED",
    b"WEBGLCONTEXTCREATIONERROR",
    b"WEBGLCONTEXTLOST",
    b"WEBGLCONTEXTRESTORED",
    b"WEBKITANIMATIONEND",
    b"WEBKITANIMATIONITERATION",
    b"WEBKITANIMATIONSTART",
    b"WEBKITBEFORETEXTINSERTED",
    b"WEBKITBEGINFULLSCREEN",
    b"WEBKITCURRENTPLAYBACKTARGETISWIRELESSCHANGED",
    b"WEBKITENDFULLSCREEN",
    b"WEBKITFULLSCREENCHANGE",
    b"WEBKITFULLSCREENERROR",
    b"WEBKITKEYADDED",
    b"WEBKITKEYERROR",
    b"WEBKITKEYMESSAGE",
    b"WEBKITMOUSEFORCECHANGED",
    b"WEBKITMOUSEFORCEDOWN",
    b"WEBKITMOUSEFORCEUP",
    b"WEBKITMOUSEFORCEWILLBEGIN",
    b"WEBKITNEEDKEY",
    b"WEBKITNETWORKINFOCHANGE",
    b"WEBKITPLAYBACKTARGETAVAILABILITYCHANGED",
    b"WEBKITPRESENTATIONMODECHANGED",
    b"WEBKITREGIONOVERSETCHANGE",
    b"WEBKITREMOVESOURCEBUFFER",
    b"WEBKITSOURCECLOSE",
    b"WEBKITSOURCEENDED",
    b"WEBKITSOURCEOPEN",
    b"WEBKITSPEECHCHANGE",
    b"WEBKITTRANSITIONEND",
    b"WEBKITWILLREVEALBOTTOM",
    b"WEBKITWILLREVEALLEFT",
    b"WEBKITWILLREVEALRIGHT",
    b"WEBKITWILLREVEALTOP",
    b"WHEEL",
    b"WRITEEND",
    b"WRITESTART",
    b"WRITE",
    b"ZOOM",
];

/// `text` without its NULs, ASCII letters upper-cased, equals `upper` (libinjection's
/// `cstrcasecmp_with_null`).
fn eq_upper_skip_nul(upper: &[u8], text: &[u8]) -> bool {
    let mut rest = upper.iter();
    for &b in text.iter().filter(|&&b| b != 0) {
        if rest.next() != Some(&b.to_ascii_uppercase()) {
            return false;
        }
    }
    rest.next().is_none()
}

/// The first `upper.len()` bytes of `text` (which must all be there) match `upper`.
fn starts_with_upper(upper: &[u8], text: &[u8]) -> bool {
    text.get(..upper.len())
        .is_some_and(|head| eq_upper_skip_nul(upper, head))
}

fn is_black_tag(name: &[u8]) -> bool {
    if name.len() < 3 {
        return false;
    }
    if BLACK_TAGS.iter().any(|tag| eq_upper_skip_nul(tag, name)) {
        return true;
    }
    // Anything SVG or XSL(T) related.
    let head = name.get(..3).unwrap_or(&[]);
    head.eq_ignore_ascii_case(b"svg") || head.eq_ignore_ascii_case(b"xsl")
}

/// `name` is the attribute name token; `rest` runs from its start to the end of the input
/// (libinjection compares the `on*` names over their own length, past the token if need be).
fn black_attr(name: &[u8], rest: &[u8]) -> Attr {
    if name.len() < 2 {
        return Attr::None;
    }
    if name.len() >= 5 {
        // JavaScript on* event handlers: the event name is compared over its own length,
        // past the token if need be, as libinjection does.
        let on = name.get(..2).is_some_and(|h| h.eq_ignore_ascii_case(b"on"));
        let after_on = rest.get(2..).unwrap_or(&[]);
        if on
            && BLACK_ON_EVENTS
                .iter()
                .any(|e| starts_with_upper(e, after_on))
        {
            return Attr::Black;
        }
        // xmlns can create arbitrary tags.
        if starts_with_upper(b"XMLNS", name) || starts_with_upper(b"XLINK", name) {
            return Attr::Black;
        }
    }
    BLACK_ATTRS
        .iter()
        .find(|(a, _)| eq_upper_skip_nul(a, name))
        .map_or(Attr::None, |&(_, t)| t)
}

/// libinjection's `html_decode_char_at`: the character at the start of `src`, decoding a
/// numeric entity (`&#106;`, `&#x6A`), and how many bytes it took. Reads past the end see NUL.
fn html_decode_char_at(src: &[u8]) -> (u32, usize) {
    let at = |i: usize| src.get(i).copied().unwrap_or(0);
    let Some(&first) = src.first() else {
        return (0, 0);
    };
    if first != b'&' || src.len() < 2 {
        return (u32::from(first), 1);
    }
    if at(1) != b'#' {
        // Named entities do not matter here.
        return (u32::from(b'&'), 1);
    }
    let len = src.len();
    let (radix, mut i) = if matches!(at(2), b'x' | b'X') {
        (16, 3)
    } else {
        (10, 2)
    };
    let Some(mut val) = char::from(at(i)).to_digit(radix) else {
        return (u32::from(b'&'), 1);
    };
    i += 1;
    while i < len {
        let ch = at(i);
        if ch == b';' {
            return (val, i + 1);
        }
        let Some(d) = char::from(ch).to_digit(radix) else {
            return (val, i);
        };
        val = val * radix + d;
        if val > 0x0010_00FF {
            return (u32::from(b'&'), 1);
        }
        i += 1;
    }
    (val, i)
}

/// libinjection's `htmlencode_startswith`: the HTML-encoded `text` starts with `prefix` (upper
/// case), ignoring leading white space and control characters, NULs and newlines.
fn html_starts_with(prefix: &[u8], mut text: &[u8]) -> bool {
    let mut want = prefix.iter();
    let mut first = true;
    while !text.is_empty() {
        let Some(&expected) = want.as_slice().first() else {
            return true;
        };
        let (mut cb, consumed) = html_decode_char_at(text);
        text = text.get(consumed..).unwrap_or(&[]);
        if first && cb <= 32 {
            continue;
        }
        first = false;
        if cb == 0 || cb == 10 {
            continue;
        }
        if (u32::from(b'a')..=u32::from(b'z')).contains(&cb) {
            cb -= 0x20;
        }
        // C compares as `char`: only the low byte counts.
        if expected != cb.to_le_bytes()[0] {
            return false;
        }
        want.next();
    }
    want.as_slice().is_empty()
}

/// A URL with a dangerous scheme: `data:`, `view-source:`, `java...` (`javascript:`) or
/// `vbscript:` (after leading white space, control and non-ASCII bytes).
fn is_black_url(url: &[u8]) -> bool {
    let start = url
        .iter()
        .position(|&b| b > 32 && b < 127)
        .unwrap_or(url.len());
    let url = url.get(start..).unwrap_or(&[]);
    [&b"DATA"[..], b"VIEW-SOURCE", b"JAVA", b"VBSCRIPT"]
        .iter()
        .any(|scheme| html_starts_with(scheme, url))
}

/// libinjection's `libinjection_is_xss` for one starting context.
fn is_xss(input: &[u8], start: Start) -> bool {
    let mut h5 = Html5::new(input, start);
    let mut attr = Attr::None;
    while let Some(token) = h5.next_token() {
        if token.kind != TokenType::AttrValue {
            attr = Attr::None;
        }
        let text = h5.bytes(&token);
        match token.kind {
            TokenType::Doctype => return true,
            TokenType::TagNameOpen => {
                if is_black_tag(text) {
                    return true;
                }
            }
            TokenType::AttrName => attr = black_attr(text, h5.rest(&token)),
            TokenType::AttrValue => {
                let bad = match attr {
                    Attr::None => false,
                    Attr::Black | Attr::Style => true,
                    Attr::Url => is_black_url(text),
                    Attr::Indirect => black_attr(text, h5.rest(&token)) != Attr::None,
                };
                if bad {
                    return true;
                }
                attr = Attr::None;
            }
            TokenType::TagComment => {
                // IE takes '`' as a tag end.
                if text.contains(&b'`') {
                    return true;
                }
                let head3 = text.get(..3).unwrap_or(&[]);
                if text.len() > 3
                    && (head3.first() == Some(&b'[')
                        && head3
                            .get(1..)
                            .is_some_and(|h| h.eq_ignore_ascii_case(b"if"))
                        || head3.eq_ignore_ascii_case(b"xml"))
                {
                    // IE conditional comment, or an XML declaration.
                    return true;
                }
                if text.len() > 5
                    && (starts_with_upper(b"IMPORT", text) || starts_with_upper(b"ENTITY", text))
                {
                    // IE <?import pseudo-tag, XML entity definition.
                    return true;
                }
            }
            TokenType::DataText
            | TokenType::TagNameClose
            | TokenType::TagNameSelfClose
            | TokenType::TagClose => {}
        }
    }
    false
}

/// libinjection's `libinjection_xss`: XSS in any of the five starting contexts.
pub(crate) fn detect(input: &[u8]) -> bool {
    [
        Start::Data,
        Start::ValueNoQuote,
        Start::ValueSingleQuote,
        Start::ValueDoubleQuote,
        Start::ValueBackQuote,
    ]
    .into_iter()
    .any(|start| is_xss(input, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_decoding() {
        assert_eq!(html_decode_char_at(b"abc"), (u32::from(b'a'), 1));
        assert_eq!(html_decode_char_at(b"&#106;x"), (106, 6));
        assert_eq!(html_decode_char_at(b"&#x6A;x"), (0x6a, 6));
        assert_eq!(html_decode_char_at(b"&#x6Ax"), (0x6a, 5));
        assert_eq!(html_decode_char_at(b"&amp;"), (u32::from(b'&'), 1));
        assert_eq!(html_decode_char_at(b"&#"), (u32::from(b'&'), 1));
        assert_eq!(html_decode_char_at(b"&#x"), (u32::from(b'&'), 1));
        assert_eq!(html_decode_char_at(b"&#99999999"), (u32::from(b'&'), 1));
    }

    #[test]
    fn url_schemes() {
        assert!(is_black_url(b"javascript:alert(1)"));
        assert!(is_black_url(b"  JaVaScRiPt:alert(1)"));
        assert!(is_black_url(b"&#106;avascript:alert(1)"));
        assert!(is_black_url(b"jav\nascript:"));
        assert!(is_black_url(b"data:text/html,x"));
        assert!(is_black_url(b"vbscript:x"));
        assert!(is_black_url(b"view-source:x"));
        assert!(!is_black_url(b"http://example.com/"));
        assert!(!is_black_url(b"/relative/path"));
        assert!(!is_black_url(b"jav"));
    }

    #[test]
    fn attributes() {
        assert_eq!(black_attr(b"onerror", b"onerror=x"), Attr::Black);
        assert_eq!(black_attr(b"ONLOAD", b"ONLOAD"), Attr::Black);
        // on* names are prefixes: onerrorx is still onerror
        assert_eq!(black_attr(b"onerrorx", b"onerrorx"), Attr::Black);
        assert_eq!(black_attr(b"onfoo", b"onfoo"), Attr::None);
        assert_eq!(
            black_attr(b"onanimationstart", b"onanimationstart"),
            Attr::Black
        );
        assert_eq!(black_attr(b"on", b"on"), Attr::None);
        assert_eq!(black_attr(b"href", b"href"), Attr::Url);
        assert_eq!(black_attr(b"s\0rc", b"s\0rc"), Attr::Url);
        assert_eq!(black_attr(b"xmlns:x", b"xmlns:x"), Attr::Black);
        assert_eq!(black_attr(b"style", b"style"), Attr::Style);
        assert_eq!(black_attr(b"title", b"title"), Attr::None);
    }

    #[test]
    fn tags() {
        assert!(is_black_tag(b"script"));
        assert!(is_black_tag(b"ScRiPt"));
        assert!(is_black_tag(b"scr\0ipt"));
        assert!(is_black_tag(b"svg:x"));
        assert!(is_black_tag(b"xslt"));
        assert!(!is_black_tag(b"b"));
        assert!(!is_black_tag(b"div"));
    }
}
