package webhookreceiver

import (
	"regexp"
	"strings"
)

// Bounce classification. A bounce is hard unless it is soft, decided by the first of these
// that speaks:
//
//  1. the event name (HARD_BOUNCE, SOFT_BOUNCE);
//  2. an explicit bounce type in the description (hard/permanent, soft/transient/temporary);
//  3. the class of an enhanced status code (RFC 3463 c.s.d, as a token: 5.1.1, 4.2.2) where a reply
//     begins: at the start of the text or of a line, after a "said:"/"smtp;"-style introducer, an
//     opening quote or bracket ("(#5.1.1)"), or right after a reply code ("550 5.1.1", "550-5.1.1") —
//     never one quoted in the middle of prose ("X-Mailer: PHPMailer 5.2.28", "RFC 3463 section 5.1.1");
//  4. the class of a basic SMTP reply code (550, 452) where a reply begins (as above), or as a code field;
//  5. words that say the failure is temporary ("mailbox full", "try again later", "deferred", ...).
//
// Within 3 and 4 a permanent code (5) wins over a temporary one (4). A code field that holds more than a
// code ("450 Requested mail action not taken: mailbox busy", "Mailbox full") is read as the reply text it
// is. Only the description is read: the payload's ids, timestamps, URLs and numbers never reach this code
// (see payload.description).

// bounceClass is the verdict of one rule: unknown lets the next rule speak.
type bounceClass int

const (
	classUnknown bounceClass = iota
	classHard
	classSoft
)

// description is the part of a bounce payload that may say why it bounced.
type description struct {
	// types are explicit bounce types (bounce_type, type).
	types []string
	// codes are values of code fields (code, smtp_code, status_code): a reply or enhanced code on its own.
	codes []string
	// texts are free texts: SMTP replies, diagnostic codes, reasons.
	texts []string
}

// classifySoft reports whether a bounce is soft: eventName is the upper-cased event name.
func classifySoft(eventName string, d description) bool {
	switch eventName {
	case "HARD_BOUNCE":
		return false
	case "SOFT_BOUNCE":
		return true
	}
	d = d.withTextualCodes()
	for _, rule := range []func(description) bounceClass{byType, byEnhancedCode, byBasicCode, byWords} {
		switch rule(d) {
		case classHard:
			return false
		case classSoft:
			return true
		}
	}
	return false
}

// withTextualCodes returns d with every code field that is more than a bare code moved to the texts, where
// the reply-code and word rules read it like any other reply.
func (d description) withTextualCodes() description {
	var codes []string
	texts := d.texts
	for _, c := range d.codes {
		if t := strings.TrimSpace(c); basicToken.MatchString(t) || enhancedToken.MatchString(t) {
			codes = append(codes, t)
		} else {
			texts = append(texts[:len(texts):len(texts)], c)
		}
	}
	d.codes, d.texts = codes, texts
	return d
}

// byType reads an explicit bounce type.
func byType(d description) bounceClass {
	c := classUnknown
	for _, t := range d.types {
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "hard", "hard_bounce", "hardbounce", "hard bounce", "permanent", "permanent_failure":
			return classHard
		case "soft", "soft_bounce", "softbounce", "soft bounce", "transient", "temporary", "temporary_failure":
			c = classSoft
		}
	}
	return c
}

// enhancedToken is an RFC 3463 enhanced status code standing alone as a token (punctuation around it
// allowed: "#5.1.1", "(4.2.2)", "5.7.1;"), never part of an IP address, a version ("Exim 4.94.2": the
// subject is one digit, 0-7) or an id.
var enhancedToken = regexp.MustCompile(`^[#("'\[<]*([245])\.([0-7])\.(\d{1,3})[)"'\]>,;:.]*$`)

// basicToken is a basic SMTP reply code as a token: "550", "421-4.7.0" (a continuation line), "452," .
var basicToken = regexp.MustCompile(`^[("'\[]*([245])\d\d(?:-(?:[245]\.[0-7]\.\d{1,3})?)?[)"'\],;:.]*$`)

// byEnhancedCode reads the class of the enhanced status codes in the description; permanent wins.
func byEnhancedCode(d description) bounceClass {
	c := classUnknown
	for _, s := range append(append([]string(nil), d.codes...), d.texts...) {
		for _, line := range strings.Split(s, "\n") {
			toks := strings.Fields(line)
			for i, tok := range toks {
				// "550-5.1.1" carries the enhanced code after the dash.
				if j := strings.IndexByte(tok, '-'); j > 0 && basicToken.MatchString(tok) {
					tok = tok[j+1:]
				}
				m := enhancedToken.FindStringSubmatch(tok)
				if m == nil || !enhancedStarts(toks, i) {
					continue
				}
				switch m[1] {
				case "5":
					return classHard
				case "4":
					c = classSoft
				}
			}
		}
	}
	return c
}

// byBasicCode reads the class of the basic reply codes where a reply begins; permanent wins.
func byBasicCode(d description) bounceClass {
	c := classUnknown
	note := func(digit byte) bool {
		switch digit {
		case '5':
			c = classHard
			return true
		case '4':
			c = classSoft
		}
		return false
	}
	for _, s := range d.codes {
		if m := basicToken.FindStringSubmatch(strings.TrimSpace(s)); m != nil && note(m[1][0]) {
			return classHard
		}
	}
	for _, s := range d.texts {
		for _, line := range strings.Split(s, "\n") {
			toks := strings.Fields(line)
			for i, tok := range toks {
				m := basicToken.FindStringSubmatch(tok)
				if m == nil || !replyStarts(toks, i) {
					continue
				}
				if note(m[1][0]) {
					return classHard
				}
			}
		}
	}
	return c
}

// introduced reports whether a reply may begin at toks[i] by its place alone: at the start of a line,
// after a token that introduces a reply ("said:", "smtp;", "RCPT TO:<x>:", "error:"), or at an opening
// quote, parenthesis or bracket.
func introduced(toks []string, i int) bool {
	if i == 0 || strings.ContainsAny(toks[i][:1], `#("'[<`) {
		return true
	}
	prev := toks[i-1]
	return strings.HasSuffix(prev, ":") || strings.HasSuffix(prev, ";")
}

// replyStarts reports whether a basic reply code at toks[i] begins a reply: where introduced says, or
// right before an enhanced status code ("452 4.2.2").
func replyStarts(toks []string, i int) bool {
	return introduced(toks, i) || (i+1 < len(toks) && enhancedToken.MatchString(toks[i+1]))
}

// enhancedStarts reports whether an enhanced status code at toks[i] is the reply's status: where
// introduced says, or right after a basic reply code that is itself introduced ("said: 550 5.1.1").
func enhancedStarts(toks []string, i int) bool {
	return introduced(toks, i) || (basicToken.MatchString(toks[i-1]) && introduced(toks, i-1))
}

// softPhrases say a failure is temporary; read only when no code or type decided.
var softPhrases = []string{"mailbox full", "mailbox is full", "mailbox has exceeded", "over quota", "quota exceeded",
	"exceeded storage", "exceeds its quota", "insufficient storage", "try again", "try later", "deferred",
	"temporar", "greylist", "graylist", "soft bounce", "too many connections", "rate limited"}

// byWords reads phrases that say the failure is temporary.
func byWords(d description) bounceClass {
	for _, s := range d.texts {
		lower := strings.ToLower(s)
		for _, p := range softPhrases {
			if strings.Contains(lower, p) {
				return classSoft
			}
		}
	}
	return classUnknown
}
