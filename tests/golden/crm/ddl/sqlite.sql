CREATE TABLE company (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	title VARCHAR(500) DEFAULT '' NOT NULL, 
	data JSON NOT NULL, 
	record_fields JSON NOT NULL, 
	row_version INTEGER DEFAULT '1' NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	created_by BIGINT, 
	updated_by BIGINT
);

CREATE UNIQUE INDEX ix_company_account_number ON company (CAST(JSON_EXTRACT(data, '$."account_number"') AS VARCHAR));

CREATE INDEX ix_company_created_at ON company (created_at);

CREATE INDEX ix_company_industry ON company (CAST(JSON_EXTRACT(data, '$."industry"') AS VARCHAR));

CREATE INDEX ix_company_name ON company (CAST(JSON_EXTRACT(data, '$."name"') AS VARCHAR));

CREATE INDEX ix_company_owner ON company (CAST(JSON_EXTRACT(data, '$."owner"') AS INTEGER));

CREATE INDEX ix_company_status ON company (CAST(JSON_EXTRACT(data, '$."status"') AS VARCHAR));

CREATE INDEX ix_company_title ON company (title);

CREATE TABLE product (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	title VARCHAR(500) DEFAULT '' NOT NULL, 
	data JSON NOT NULL, 
	record_fields JSON NOT NULL, 
	row_version INTEGER DEFAULT '1' NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	created_by BIGINT, 
	updated_by BIGINT
);

CREATE INDEX ix_product_created_at ON product (created_at);

CREATE UNIQUE INDEX ix_product_sku ON product (CAST(JSON_EXTRACT(data, '$."sku"') AS VARCHAR));

CREATE INDEX ix_product_title ON product (title);

CREATE TABLE person (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	title VARCHAR(500) DEFAULT '' NOT NULL, 
	data JSON NOT NULL, 
	record_fields JSON NOT NULL, 
	row_version INTEGER DEFAULT '1' NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	created_by BIGINT, 
	updated_by BIGINT, 
	company BIGINT, 
	FOREIGN KEY(company) REFERENCES company (id) ON DELETE RESTRICT
);

CREATE INDEX ix_person_company ON person (company);

CREATE INDEX ix_person_created_at ON person (created_at);

CREATE INDEX ix_person_email ON person (CAST(JSON_EXTRACT(data, '$."email"') AS VARCHAR));

CREATE INDEX ix_person_last_name ON person (CAST(JSON_EXTRACT(data, '$."last_name"') AS VARCHAR));

CREATE INDEX ix_person_title ON person (title);

CREATE TABLE contract (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	title VARCHAR(500) DEFAULT '' NOT NULL, 
	data JSON NOT NULL, 
	record_fields JSON NOT NULL, 
	row_version INTEGER DEFAULT '1' NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	created_by BIGINT, 
	updated_by BIGINT, 
	company BIGINT, 
	contact BIGINT, 
	FOREIGN KEY(company) REFERENCES company (id) ON DELETE RESTRICT, 
	FOREIGN KEY(contact) REFERENCES person (id) ON DELETE RESTRICT
);

CREATE INDEX ix_contract_company ON contract (company);

CREATE INDEX ix_contract_contact ON contract (contact);

CREATE INDEX ix_contract_created_at ON contract (created_at);

CREATE INDEX ix_contract_end_date ON contract (CAST(JSON_EXTRACT(data, '$."end_date"') AS VARCHAR));

CREATE UNIQUE INDEX ix_contract_reference ON contract (CAST(JSON_EXTRACT(data, '$."reference"') AS VARCHAR));

CREATE INDEX ix_contract_title ON contract (title);

CREATE TABLE opportunity (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	title VARCHAR(500) DEFAULT '' NOT NULL, 
	data JSON NOT NULL, 
	record_fields JSON NOT NULL, 
	row_version INTEGER DEFAULT '1' NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	created_by BIGINT, 
	updated_by BIGINT, 
	company BIGINT, 
	contact BIGINT, 
	product BIGINT, 
	FOREIGN KEY(company) REFERENCES company (id) ON DELETE RESTRICT, 
	FOREIGN KEY(contact) REFERENCES person (id) ON DELETE RESTRICT, 
	FOREIGN KEY(product) REFERENCES product (id) ON DELETE RESTRICT
);

CREATE INDEX ix_opportunity_company ON opportunity (company);

CREATE INDEX ix_opportunity_contact ON opportunity (contact);

CREATE INDEX ix_opportunity_created_at ON opportunity (created_at);

CREATE INDEX ix_opportunity_expected_close ON opportunity (CAST(JSON_EXTRACT(data, '$."expected_close"') AS VARCHAR));

CREATE INDEX ix_opportunity_owner ON opportunity (CAST(JSON_EXTRACT(data, '$."owner"') AS INTEGER));

CREATE INDEX ix_opportunity_product ON opportunity (product);

CREATE INDEX ix_opportunity_stage ON opportunity (CAST(JSON_EXTRACT(data, '$."stage"') AS VARCHAR));

CREATE INDEX ix_opportunity_title ON opportunity (title);

CREATE TABLE purchase (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	title VARCHAR(500) DEFAULT '' NOT NULL, 
	data JSON NOT NULL, 
	record_fields JSON NOT NULL, 
	row_version INTEGER DEFAULT '1' NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	created_by BIGINT, 
	updated_by BIGINT, 
	company BIGINT, 
	product BIGINT, 
	opportunity BIGINT, 
	FOREIGN KEY(company) REFERENCES company (id) ON DELETE RESTRICT, 
	FOREIGN KEY(product) REFERENCES product (id) ON DELETE RESTRICT, 
	FOREIGN KEY(opportunity) REFERENCES opportunity (id) ON DELETE RESTRICT
);

CREATE INDEX ix_purchase_company ON purchase (company);

CREATE INDEX ix_purchase_created_at ON purchase (created_at);

CREATE INDEX ix_purchase_opportunity ON purchase (opportunity);

CREATE UNIQUE INDEX ix_purchase_order_number ON purchase (CAST(JSON_EXTRACT(data, '$."order_number"') AS VARCHAR));

CREATE INDEX ix_purchase_product ON purchase (product);

CREATE INDEX ix_purchase_title ON purchase (title);

CREATE TABLE support_request (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	title VARCHAR(500) DEFAULT '' NOT NULL, 
	data JSON NOT NULL, 
	record_fields JSON NOT NULL, 
	row_version INTEGER DEFAULT '1' NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	created_by BIGINT, 
	updated_by BIGINT, 
	company BIGINT, 
	person BIGINT, 
	product BIGINT, 
	contract BIGINT, 
	FOREIGN KEY(company) REFERENCES company (id) ON DELETE RESTRICT, 
	FOREIGN KEY(person) REFERENCES person (id) ON DELETE RESTRICT, 
	FOREIGN KEY(product) REFERENCES product (id) ON DELETE RESTRICT, 
	FOREIGN KEY(contract) REFERENCES contract (id) ON DELETE RESTRICT
);

CREATE INDEX ix_support_request_company ON support_request (company);

CREATE INDEX ix_support_request_contract ON support_request (contract);

CREATE INDEX ix_support_request_created_at ON support_request (created_at);

CREATE INDEX ix_support_request_person ON support_request (person);

CREATE INDEX ix_support_request_product ON support_request (product);

CREATE INDEX ix_support_request_severity ON support_request (CAST(JSON_EXTRACT(data, '$."severity"') AS VARCHAR));

CREATE INDEX ix_support_request_status ON support_request (CAST(JSON_EXTRACT(data, '$."status"') AS VARCHAR));

CREATE INDEX ix_support_request_title ON support_request (title);

CREATE TABLE shipment (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	title VARCHAR(500) DEFAULT '' NOT NULL, 
	data JSON NOT NULL, 
	record_fields JSON NOT NULL, 
	row_version INTEGER DEFAULT '1' NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	created_by BIGINT, 
	updated_by BIGINT, 
	company BIGINT, 
	product BIGINT, 
	purchase BIGINT, 
	FOREIGN KEY(company) REFERENCES company (id) ON DELETE RESTRICT, 
	FOREIGN KEY(product) REFERENCES product (id) ON DELETE RESTRICT, 
	FOREIGN KEY(purchase) REFERENCES purchase (id) ON DELETE RESTRICT
);

CREATE INDEX ix_shipment_company ON shipment (company);

CREATE INDEX ix_shipment_created_at ON shipment (created_at);

CREATE INDEX ix_shipment_product ON shipment (product);

CREATE INDEX ix_shipment_purchase ON shipment (purchase);

CREATE INDEX ix_shipment_serial_number ON shipment (CAST(JSON_EXTRACT(data, '$."serial_number"') AS VARCHAR));

CREATE INDEX ix_shipment_title ON shipment (title);
