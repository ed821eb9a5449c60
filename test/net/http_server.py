#!/usr/bin/python3
"""http_server.py: a recording HTTP server for jobq's network tests.

Listens on 127.0.0.1 only (HTTP/1.1, keep-alive, one thread per connection)
and answers by the first segment of the path:

  /ok...              200 {"ok":true}
  /status/<code>      that status code
  /flaky/<name>       500 the first time for <name>, then 200
  /bad...             400 "bad request: missing field"
  /hang...            30 s of nothing, then 200 (other requests go on; it
                      stops waiting when the client closes the connection)
  /slow...            100 ms, then 200
  /limited/<name>     429 with Retry-After: 3 the first time for <name>, then 200
  /redirect...        302 to gopher://127.0.0.1/
  .../goto?to=U&code=C  C (default 302) to U, from any path ending in /goto
  /reset-stats        200; sets peak and count of --stats back to 0
  anything else       404

--port-file F   bind port 0 and write the port to F (atomically) once listening
--log F         append one JSON line per request received: method, path,
                query, headers (as sent), body (UTF-8 text), time (unix
                seconds, float) and signature_valid (see --signing-key)
--stats F       after each request, write {"peak": most requests handled at
                once, "count": requests answered} to F (atomically)
--signing-key K the key of the Jobq-Signature header "t=<unix>,v1=<hex>",
                HMAC-SHA256(K, "<t>.<raw body>"); signature_valid is null
                without the header or without a key, else true or false
--tls-cert F, --tls-key K
                serve HTTPS with this certificate and key (PEM)

Runs until killed.
"""

import argparse
import hashlib
import hmac
import json
import os
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import ssl
from urllib.parse import parse_qs, urlsplit

args = None
lock = threading.Lock()
seen = {}			# (prefix, name) -> requests so far
in_flight = 0
peak = 0
count = 0


def write_atomically(path, text):
	tmp = '%s.tmp.%d.%d' % (path, os.getpid(), threading.get_ident())
	with open(tmp, 'w') as f:
		f.write(text)
	os.replace(tmp, path)


def signature_valid(header, raw):
	if header is None or not args.signing_key:
		return None
	parts = {}
	sigs = []
	for item in header.split(','):
		key, _, value = item.strip().partition('=')
		if key == 'v1':
			sigs.append(value)
		else:
			parts[key] = value
	t = parts.get('t')
	if t is None or not t.isdigit() or not sigs:
		return False
	expected = hmac.new(args.signing_key.encode(), t.encode() + b'.' + raw,
						hashlib.sha256).hexdigest()
	return any(hmac.compare_digest(expected, s.lower()) for s in sigs)


def first_time(prefix, name):
	"""True the first time (prefix, name) is seen."""
	with lock:
		n = seen.get((prefix, name), 0)
		seen[(prefix, name)] = n + 1
	return n == 0


def matches(path, prefix):
	return path == prefix or path.startswith(prefix + '/')


class Handler(BaseHTTPRequestHandler):
	protocol_version = 'HTTP/1.1'
	# headers and body are two writes: without TCP_NODELAY the second waits
	# for the client's delayed ACK (40 ms)
	disable_nagle_algorithm = True
	server_version = 'jobq-test-http'

	def version_string(self):
		return self.server_version
	timeout = 120			# an idle keep-alive connection is closed after this

	def log_message(self, format, *a):
		pass

	def read_body(self):
		if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
			chunks = []
			while True:
				size = int(self.rfile.readline().split(b';')[0].strip() or b'0', 16)
				if size == 0:
					while self.rfile.readline() not in (b'\r\n', b'\n', b''):
						pass		# trailers
					break
				chunks.append(self.rfile.read(size))
				self.rfile.readline()
			return b''.join(chunks)
		length = int(self.headers.get('Content-Length') or 0)
		return self.rfile.read(length) if length > 0 else b''

	def reply(self, code, body=b'', ctype='application/json', extra=()):
		if isinstance(body, str):
			body = body.encode()
		self.send_response(code)
		for k, v in extra:
			self.send_header(k, v)
		if code in (204, 304) or code < 200:
			body = b''
		else:
			self.send_header('Content-Type', ctype)
			self.send_header('Content-Length', str(len(body)))
		self.end_headers()
		if self.command != 'HEAD' and body:
			self.wfile.write(body)
		self.wfile.flush()

	def wait_unless_gone(self, seconds):
		"""Sleep; False as soon as the client closes the connection (a
		request it gave up on is no longer counted as being handled)."""
		deadline = time.monotonic() + seconds
		while time.monotonic() < deadline:
			readable, _, _ = select.select([self.connection], [], [], 0.1)
			if readable:
				try:
					if self.connection.recv(1, socket.MSG_PEEK) == b'':
						self.close_connection = True
						return False
				except OSError:
					self.close_connection = True
					return False
				time.sleep(0.1)		# bytes of a next request: keep waiting
		return True

	def handle_any(self):
		global in_flight, peak, count
		raw = self.read_body()
		now = time.time()
		url = urlsplit(self.path)
		path = url.path
		if path == '/reset-stats':		# bench/net/run.sh, between its runs
			with lock:
				peak = count = 0
			self.reply(200, b'{"reset":true}')
			return
		entry = {
			'method': self.command,
			'path': path,
			'query': url.query,
			'headers': {k: v for k, v in self.headers.items()},
			'body': raw.decode('utf-8', errors='replace'),
			'time': now,
			'signature_valid': signature_valid(self.headers.get('Jobq-Signature'), raw),
		}
		with lock:
			in_flight += 1
			peak = max(peak, in_flight)
			if args.log:
				with open(args.log, 'a') as f:
					f.write(json.dumps(entry) + '\n')
		try:
			self.answer(path, url.query)
		except (BrokenPipeError, ConnectionResetError):
			self.close_connection = True
		finally:
			with lock:
				in_flight -= 1
				count += 1
				if args.stats:
					write_atomically(args.stats, json.dumps({'peak': peak, 'count': count}))

	def answer(self, path, query):
		ok = b'{"ok":true}'
		segs = path.split('/')
		name = '/'.join(segs[2:])
		if segs[-1] == 'goto':
			q = parse_qs(query)
			code = int(q.get('code', ['302'])[0])
			self.reply(code, 'moved', 'text/plain',
					   extra=[('Location', q.get('to', ['/'])[0])])
		elif matches(path, '/ok'):
			self.reply(200, ok)
		elif path.startswith('/status/'):
			try:
				code = int(segs[2])
				assert 200 <= code <= 599
			except (ValueError, AssertionError, IndexError):
				self.reply(400, 'bad status code', 'text/plain')
				return
			self.reply(code, '{"status":%d}' % code)
		elif path.startswith('/flaky/') and name:
			if first_time('flaky', name):
				self.reply(500, 'flaky: failing the first time', 'text/plain')
			else:
				self.reply(200, ok)
		elif matches(path, '/bad'):
			self.reply(400, 'bad request: missing field', 'text/plain')
		elif matches(path, '/hang'):
			if self.wait_unless_gone(30):
				self.reply(200, ok)
		elif matches(path, '/slow'):
			time.sleep(0.1)
			self.reply(200, ok)
		elif path.startswith('/limited/') and name:
			if first_time('limited', name):
				self.reply(429, 'too many requests', 'text/plain',
						   extra=[('Retry-After', '3')])
			else:
				self.reply(200, ok)
		elif matches(path, '/redirect'):
			self.reply(302, 'moved', 'text/plain',
					   extra=[('Location', 'gopher://127.0.0.1/')])
		else:
			self.reply(404, 'not found', 'text/plain')

	do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
	daemon_threads = True
	request_queue_size = 1024
	allow_reuse_address = True


def main():
	global args
	p = argparse.ArgumentParser(description='recording HTTP server for jobq tests')
	p.add_argument('--port', type=int, default=0)
	p.add_argument('--port-file')
	p.add_argument('--log')
	p.add_argument('--stats')
	p.add_argument('--signing-key')
	p.add_argument('--tls-cert')
	p.add_argument('--tls-key')
	args = p.parse_args()

	server = Server(('127.0.0.1', args.port), Handler)
	if args.tls_cert:
		ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		ctx.load_cert_chain(args.tls_cert, args.tls_key)
		server.socket = ctx.wrap_socket(server.socket, server_side=True)
	port = server.server_address[1]
	if args.port_file:
		write_atomically(args.port_file, '%d\n' % port)
	else:
		print(port, flush=True)
	try:
		server.serve_forever(poll_interval=0.2)
	except KeyboardInterrupt:
		pass


if __name__ == '__main__':
	main()
