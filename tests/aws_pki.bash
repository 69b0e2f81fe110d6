# A throw-away PKI made with certtool for the AWS tests: a CA, a server certificate for
# localhost / 127.0.0.1 and a client certificate (the "device certificate" AWS IoT wants).
# make_pki DIR: writes ca.pem ca.key server.pem server.key client.pem client.key (and
# other.pem other.key: a client certificate from another CA, which the server must refuse).
make_pki() {
	local d=$1
	mkdir -p "$d"
	certtool --generate-privkey --key-type=ecdsa --outfile "$d/ca.key" 2>/dev/null
	cat >"$d/ca.tmpl" <<-T
	cn = "lwm2m-gw test CA"
	ca
	cert_signing_key
	expiration_days = 2
	T
	certtool --generate-self-signed --load-privkey "$d/ca.key" --template "$d/ca.tmpl" \
		--outfile "$d/ca.pem" 2>/dev/null
	certtool --generate-privkey --key-type=ecdsa --outfile "$d/server.key" 2>/dev/null
	cat >"$d/server.tmpl" <<-T
	cn = "localhost"
	dns_name = "localhost"
	ip_address = "127.0.0.1"
	tls_www_server
	signing_key
	expiration_days = 2
	T
	certtool --generate-certificate --load-privkey "$d/server.key" --load-ca-certificate "$d/ca.pem" \
		--load-ca-privkey "$d/ca.key" --template "$d/server.tmpl" --outfile "$d/server.pem" 2>/dev/null
	certtool --generate-privkey --key-type=ecdsa --outfile "$d/client.key" 2>/dev/null
	cat >"$d/client.tmpl" <<-T
	cn = "gateway-1"
	tls_www_client
	signing_key
	expiration_days = 2
	T
	certtool --generate-certificate --load-privkey "$d/client.key" --load-ca-certificate "$d/ca.pem" \
		--load-ca-privkey "$d/ca.key" --template "$d/client.tmpl" --outfile "$d/client.pem" 2>/dev/null
	certtool --generate-privkey --key-type=ecdsa --outfile "$d/other.key" 2>/dev/null
	certtool --generate-self-signed --load-privkey "$d/other.key" --template "$d/client.tmpl" \
		--outfile "$d/other.pem" 2>/dev/null
	[ -s "$d/client.pem" ] && [ -s "$d/server.pem" ] && [ -s "$d/other.pem" ]
}
