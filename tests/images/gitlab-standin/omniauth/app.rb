# The stand-in's sign-in: GitLab's own OmniAuth strategies (Debian's packages of
# gitlab-omniauth-openid-connect, omniauth-saml and ruby-saml) set up from the
# omniauth_providers of the gitlab.rb the last reconfigure evaluated, as GitLab's
# config/initializers/8_devise.rb and lib/gitlab/omniauth_initializer.rb do. Behind the
# stand-in's web server, which forwards /users/sign_in and /users/auth/* here. Who the
# provider's user is in GitLab (found by identity, linked, created, blocked) is decided by
# standin.omniauth (GitLab's Gitlab::Auth::OAuth::User rules), which holds the users.
require 'cgi'
require 'json'
require 'open3'
require 'rack'
require 'rack/session/cookie'
require 'webrick'
require 'omniauth'
require 'omniauth_openid_connect'
require 'omniauth-saml'

CONFIG = JSON.parse(File.read(ENV.fetch('STANDIN_EFFECTIVE_CONFIG')))
RAILS = CONFIG.fetch('gitlab_rails', {})
EXTERNAL_URL = CONFIG.fetch('external_url').chomp('/')
PROVIDERS = RAILS.fetch('omniauth_providers', []) || []

def deep_symbolize(value)
  case value
  when Hash then value.each_with_object({}) { |(k, v), out| out[k.to_sym] = deep_symbolize(v) }
  when Array then value.map { |v| deep_symbolize(v) }
  else value
  end
end

# GitLab: OmniAuth.config.full_host is the external URL (config/initializers/omniauth.rb),
# so a strategy's callback is always on the external URL's host.
OmniAuth.config.full_host = EXTERNAL_URL
OmniAuth.config.path_prefix = '/users/auth'
OmniAuth.config.allowed_request_methods = [:post]
OmniAuth.config.logger = Logger.new($stderr)
OmniAuth.config.on_failure = lambda do |env|
  # Devise's omniauth_callbacks failure: "Could not authenticate you from KIND because
  # "REASON"." (devise.omniauth_callbacks.failure), shown on the sign-in page.
  error = env['omniauth.error']
  kind = env['omniauth.error.strategy']&.options&.[](:label) || env['omniauth.error.strategy']&.name
  reason = error.respond_to?(:message) && !error.message.to_s.empty? ? error.message : env['omniauth.error.type'].to_s
  message = "Could not authenticate you from #{kind} because \"#{reason}\"."
  [302, { 'Location' => "/users/sign_in?alert=#{CGI.escape(message)}" }, []]
end

# GitLab's password_authentication_enabled_for_web, from the stand-in's database.
def password_sign_in?
  db = JSON.parse(File.read(ENV.fetch('STANDIN_DB_FILE')))
  db.fetch('application_settings', {}).fetch('password_authentication_enabled_for_web', true) != false
end

def session_answer(answer)
  unless answer['session']
    return [302, { 'Location' => "/users/sign_in?alert=#{CGI.escape(answer['message'].to_s)}" }, []]
  end
  cookie = "_gitlab_session=#{answer['session']}; path=/; HttpOnly; SameSite=Lax"
  [302, { 'Location' => "#{EXTERNAL_URL}/", 'Set-Cookie' => cookie }, []]
end

def decide(question)
  out, status = Open3.capture2('python3', '-m', 'standin.omniauth', stdin_data: JSON.generate(question))
  JSON.parse(out) rescue { 'message' => "stand-in failure (#{status})" }
end

# Devise's password sign-in (POST /users/sign_in), behind Rails' CSRF check.
def password_sign_in(env)
  request = Rack::Request.new(env)
  unless Rack::Protection::AuthenticityToken.new(nil).accepts?(env)
    return [422, { 'Content-Type' => 'text/plain' }, ["Can't verify CSRF token authenticity.\n"]]
  end
  user = request.params['user'] || {}
  session_answer(decide({ login: user['login'].to_s, password: user['password'].to_s }))
end

def sign_in_page(env)
  request = Rack::Request.new(env)
  token = Rack::Protection::AuthenticityToken.token(env['rack.session'])
  alert = request.params['alert']
  password_form = if password_sign_in?
    %(<form method="post" action="/users/sign_in"><input type="hidden" name="authenticity_token" value="#{CGI.escapeHTML(token)}"><input type="text" name="user[login]"><input type="password" name="user[password]"><button type="submit">Sign in</button></form>)
  else
    ''
  end
  buttons = PROVIDERS.map do |provider|
    name = CGI.escapeHTML(provider['name'])
    label = CGI.escapeHTML(provider['label'] || provider['name'])
    %(<form method="post" action="/users/auth/#{name}"><input type="hidden" name="authenticity_token" value="#{CGI.escapeHTML(token)}"><button type="submit">#{label}</button></form>)
  end
  body = "<html><title>Sign in · GitLab</title><body>" +
         (alert ? %(<div class="flash-alert">#{CGI.escapeHTML(alert)}</div>) : '') +
         password_form + buttons.join("\n") + "</body></html>\n"
  [200, { 'Content-Type' => 'text/html; charset=utf-8' }, [body]]
end

def signed_in(env)
  auth = env['omniauth.auth']
  identity = {
    provider: auth.provider.to_s,
    extern_uid: auth.uid.to_s,
    email: auth.info&.email,
    name: auth.info&.name,
    nickname: auth.info&.nickname,
  }
  session_answer(decide(identity))
end

app = Rack::Builder.new do
  use Rack::Session::Cookie, key: '_gitlab_omniauth', secret: ENV.fetch('STANDIN_SESSION_SECRET'), same_site: :lax
  use OmniAuth::Builder do
    PROVIDERS.each do |provider|
      args = deep_symbolize(provider.fetch('args', {}))
      args[:label] = provider['label'] if provider['label']
      provider provider.fetch('name').to_sym, **args
    end
  end
  run lambda { |env|
    path = env['PATH_INFO']
    if path == '/users/sign_in' && env['REQUEST_METHOD'] == 'POST'
      password_sign_in(env)
    elsif path == '/users/sign_in'
      sign_in_page(env)
    elsif path.match?(%r{\A/users/auth/[a-z_]+/callback\z}) && env['omniauth.auth']
      signed_in(env)
    else
      [404, { 'Content-Type' => 'text/plain' }, ["Not Found\n"]]
    end
  }
end

Rack::Handler::WEBrick.run(app, Host: '127.0.0.1', Port: Integer(ENV.fetch('STANDIN_OMNIAUTH_PORT')),
                                AccessLog: [], Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN))
