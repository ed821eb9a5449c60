#!/usr/bin/python3
"""smtp_sink.py: an SMTP server for jobq's network tests that keeps every message.

Listens on 127.0.0.1 only (aiosmtpd; without --tls-cert no TLS, without
--auth no authentication).  Each message received is written as
D/<n>.eml (the raw data) and D/<n>.json (n = 1, 2, ...; the .json file is
written last, atomically):

  {"mail_from": ..., "rcpt_tos": [...], "tls": whether the session had
   switched to TLS, "login": the user it authenticated as, or null,
   "data": "<raw message as text>",
   "parsed": {"from", "to", "cc", "reply_to", "subject" (decoded),
              "content_type", "parts": [{"content_type", "charset",
              "transfer_encoding", "text" (decoded)}]}}

A recipient whose local part is "reject" is refused with 550, one whose
local part is "later" with 451.

--port-file F   bind port 0 and write the port to F (atomically) once listening
--dir D         where the messages go (created if missing)
--tls-cert F, --tls-key K
                offer STARTTLS with this certificate and key (PEM), and
                require it before MAIL
--auth U:P      require AUTH (PLAIN or LOGIN, after STARTTLS) as user U with
                password P; other credentials get 535

Runs until killed.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import socket
import ssl

from aiosmtpd.smtp import SMTP, AuthResult


def write_atomically(path, data):
	tmp = path + '.tmp'
	with open(tmp, 'wb') as f:
		f.write(data)
	os.replace(tmp, path)


def header_text(msg, name):
	value = msg.get(name)
	if value is None:
		return None
	text = str(value)
	try:
		# raw 8-bit header bytes come back as surrogate escapes
		text = text.encode('utf-8', 'surrogateescape').decode('utf-8')
	except UnicodeError:
		pass
	return text


def parse(raw):
	msg = email.message_from_bytes(raw, policy=email.policy.default)
	parts = []
	for part in msg.walk():
		if part.is_multipart():
			continue
		try:
			text = part.get_content()
			if isinstance(text, bytes):
				text = text.decode('utf-8', 'replace')
		except Exception as e:		# noqa: BLE001 - report what could not be decoded
			text = '<undecodable: %s>' % e
		parts.append({
			'content_type': part.get_content_type(),
			'charset': part.get_content_charset(),
			'transfer_encoding': part.get('Content-Transfer-Encoding'),
			'text': text,
		})
	return {
		'from': header_text(msg, 'From'),
		'to': header_text(msg, 'To'),
		'cc': header_text(msg, 'Cc'),
		'reply_to': header_text(msg, 'Reply-To'),
		'subject': header_text(msg, 'Subject'),
		'content_type': msg.get_content_type(),
		'parts': parts,
	}


class Sink:
	def __init__(self, directory):
		self.dir = directory
		self.n = 0

	async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
		local = address.split('@')[0].lower()
		if local == 'reject':
			return '550 5.1.1 no such mailbox'
		if local == 'later':
			return '451 4.3.0 try again later'
		envelope.rcpt_tos.append(address)
		return '250 OK'

	async def handle_DATA(self, server, session, envelope):
		self.n += 1
		raw = envelope.original_content or envelope.content
		if isinstance(raw, str):
			raw = raw.encode('utf-8', 'surrogateescape')
		base = os.path.join(self.dir, str(self.n))
		write_atomically(base + '.eml', raw)
		try:
			parsed = parse(raw)
		except Exception as e:		# noqa: BLE001
			parsed = {'error': str(e)}
		login = getattr(session, 'auth_data', None)
		login = getattr(login, 'login', None)
		record = {
			'mail_from': envelope.mail_from,
			'rcpt_tos': list(envelope.rcpt_tos),
			'tls': session.ssl is not None,
			'login': login.decode() if isinstance(login, bytes) else login,
			'data': raw.decode('utf-8', 'replace'),
			'parsed': parsed,
		}
		write_atomically(base + '.json', json.dumps(record).encode())
		return '250 OK: queued as %d' % self.n


def main():
	p = argparse.ArgumentParser(description='SMTP sink for jobq tests')
	p.add_argument('--port-file')
	p.add_argument('--dir', required=True)
	p.add_argument('--tls-cert')
	p.add_argument('--tls-key')
	p.add_argument('--auth')
	args = p.parse_args()
	os.makedirs(args.dir, exist_ok=True)

	sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	sock.bind(('127.0.0.1', 0))
	sock.listen(128)
	port = sock.getsockname()[1]

	handler = Sink(args.dir)
	options = {'hostname': 'sink.test', 'enable_SMTPUTF8': True}
	if args.tls_cert:
		ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		ctx.load_cert_chain(args.tls_cert, args.tls_key)
		options.update(tls_context=ctx, require_starttls=True)
	if args.auth:
		user, _, password = args.auth.partition(':')

		def authenticator(server, session, envelope, mechanism, auth_data):
			login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else auth_data.login
			pw = auth_data.password.decode() if isinstance(auth_data.password, bytes) else auth_data.password
			if login == user and pw == password:
				return AuthResult(success=True, auth_data=auth_data)
			return AuthResult(success=False, handled=False)

		options.update(authenticator=authenticator, auth_required=True,
					   auth_require_tls=bool(args.tls_cert))
	loop = asyncio.new_event_loop()
	asyncio.set_event_loop(loop)
	loop.run_until_complete(loop.create_server(
		lambda: SMTP(handler, **options),
		sock=sock))

	if args.port_file:
		write_atomically(args.port_file, b'%d\n' % port)
	else:
		print(port, flush=True)
	try:
		loop.run_forever()
	except KeyboardInterrupt:
		pass


if __name__ == '__main__':
	main()
